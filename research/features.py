"""Features for a next-interval model, from klines (and optionally ticks), each computed only from the bars up to
and including its own: the row of bar ``t`` is known at ``t``'s close, the decision time. Rolling windows, shifts
back and exponential averages with ``adjust=False`` are the only operations, so no value looks ahead
(tests/research/test_features.py alters everything after ``t`` and checks the rows up to ``t`` do not move).

Klines are the venue's (open, high, low, close, volume, trades, taker_buy_volume: integers, ticks and lots) or any
OHLCV frame (backtesting.py's samples: capitalized names, no trades and no taker side, so those features are
left out).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RETURN_HORIZONS = (1, 3, 6, 12)
VOL_WINDOWS = (12, 24)
VOLUME_WINDOW = 24
RSI_PERIOD = 14
SMA_FAST, SMA_SLOW = 10, 30
WARMUP = max(SMA_SLOW, max(VOL_WINDOWS) + 1, VOLUME_WINDOW, max(RETURN_HORIZONS) + 1)  # rows until all are defined


def normalize(bars: pd.DataFrame) -> pd.DataFrame:
    """Lower-case column names, values as floats."""
    frame = bars.rename(columns=str.lower)
    keep = [c for c in ("open", "high", "low", "close", "volume", "trades", "taker_buy_volume") if c in frame]
    return frame[keep].astype(float)


def rsi(close: pd.Series, period: int = RSI_PERIOD) -> pd.Series:
    """Wilder's RSI (his smoothing is an exponential average with alpha 1/period), 0..100."""
    change = close.diff()
    gain = change.clip(lower=0).ewm(alpha=1 / period, adjust=False, min_periods=period).mean()
    loss = (-change).clip(lower=0).ewm(alpha=1 / period, adjust=False, min_periods=period).mean()
    return 100 - 100 / (1 + gain / loss.replace(0, np.nan))


def build_features(bars: pd.DataFrame) -> pd.DataFrame:
    """One row per bar, same index; the first WARMUP rows hold NaNs."""
    b = normalize(bars)
    close = b["close"]
    log_close = np.log(close)
    out = pd.DataFrame(index=b.index)
    for h in RETURN_HORIZONS:
        out[f"ret_{h}"] = log_close.diff(h)
    r1 = out["ret_1"]
    for w in VOL_WINDOWS:
        out[f"rv_{w}"] = r1.rolling(w).std()
    out["range"] = np.log(b["high"] / b["low"])
    out["close_pos"] = ((close - b["low"]) / (b["high"] - b["low"]).replace(0, np.nan)).fillna(0.5)
    log_volume = np.log1p(b["volume"])
    out["volume_z"] = (log_volume - log_volume.rolling(VOLUME_WINDOW).mean()) / log_volume.rolling(
        VOLUME_WINDOW
    ).std().replace(0, np.nan)
    if "trades" in b:
        log_trades = np.log1p(b["trades"])
        out["trades_ratio"] = log_trades - log_trades.rolling(VOLUME_WINDOW).mean()
    if "taker_buy_volume" in b:
        out = out.join(order_flow(b["taker_buy_volume"], b["volume"]))
    out["rsi"] = rsi(close) / 100 - 0.5
    out["sma_ratio"] = close.rolling(SMA_FAST).mean() / close.rolling(SMA_SLOW).mean() - 1
    return out


def order_flow(taker_buy_volume: pd.Series, volume: pd.Series) -> pd.DataFrame:
    """Order-flow imbalance from the takers' side: (buys - sells) / volume, in the bar and over the last 6."""
    sells = volume - taker_buy_volume
    imbalance = (taker_buy_volume - sells) / volume.replace(0, np.nan)
    buys6, volume6 = taker_buy_volume.rolling(6).sum(), volume.rolling(6).sum()
    return pd.DataFrame({"ofi": imbalance.fillna(0), "ofi_6": ((2 * buys6 - volume6) / volume6.replace(0, np.nan))})


def tick_order_flow(ticks: pd.DataFrame, width_ns: int) -> pd.DataFrame:
    """Per window of ``width_ns`` (indexed by open time, ns): taker buy and sell volume and trade counts, and their
    imbalance, from the ticks' ``taker_side``; a window holds only ticks stamped inside it, so it is known at its
    close."""
    window = ticks["ts"] - ticks["ts"] % width_ns
    buy = ticks["taker_side"] == "BUY"
    frame = pd.DataFrame(
        {
            "open_time": window,
            "buy_volume": ticks["qty"].where(buy, 0),
            "sell_volume": ticks["qty"].where(~buy, 0),
            "buy_trades": buy.astype(int),
            "sell_trades": (~buy).astype(int),
        }
    )
    agg = frame.groupby("open_time").sum()
    agg["volume_imbalance"] = (agg["buy_volume"] - agg["sell_volume"]) / (agg["buy_volume"] + agg["sell_volume"])
    agg["count_imbalance"] = (agg["buy_trades"] - agg["sell_trades"]) / (agg["buy_trades"] + agg["sell_trades"])
    return agg


def target(bars: pd.DataFrame) -> pd.Series:
    """Next-interval direction (1: the next close is higher), the label; NaN on the last bar. This is the one
    value here that looks ahead, by definition, and it is never a feature."""
    close = normalize(bars)["close"]
    nxt = close.shift(-1)
    return (nxt > close).astype(float).where(nxt.notna())
