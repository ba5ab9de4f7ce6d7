"""Validation and cleaning of the raw ticks and klines the ETL reads (pandas, no I/O).

Every rule counts what it finds, so that a data card says how much each one removed. Ticks come in ``out_seq``
order, the order the engine made them; klines in ``open_time`` order.
"""

from __future__ import annotations

import hashlib

import pandas as pd

from persistence.klines import WIDTH

TICK_COLUMNS = ["symbol", "trade_id", "price", "qty", "quote_qty", "taker_side", "ts", "out_seq"]
KLINE_COLUMNS = [
    "symbol",
    "interval",
    "open_time",
    "close_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "first_trade_id",
    "last_trade_id",
]
OUTLIER_WINDOW = 25  # trailing ticks whose median a price is compared with
TICK_DTYPES = {c: "int64" for c in TICK_COLUMNS if c not in ("symbol", "taker_side")}


def content_hash(frame: pd.DataFrame) -> str:
    """A hash of the rows' values (not of the Parquet bytes, which depend on the writer's version)."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def clean_ticks(raw: pd.DataFrame, outlier_pct: float = 20.0) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop invalid ticks, duplicate trade ids, ticks out of order (a time or trade id behind an earlier tick) and
    price outliers (more than ``outlier_pct`` % from the median of the previous ticks). Gaps in the trade ids
    (trades missing from the store) are counted, not filled."""
    frame = raw.reindex(columns=TICK_COLUMNS).reset_index(drop=True)
    counts = {"read": len(frame)}
    valid = (
        frame[["trade_id", "price", "qty", "ts", "out_seq"]].notna().all(axis=1)
        & (pd.to_numeric(frame["price"], errors="coerce") > 0)
        & (pd.to_numeric(frame["qty"], errors="coerce") > 0)
        & frame["taker_side"].isin(["BUY", "SELL"])
    )
    counts["invalid"] = int((~valid).sum())
    frame = frame[valid].astype(TICK_DTYPES).sort_values("out_seq", kind="stable")
    duplicated = frame["trade_id"].duplicated(keep="first")
    counts["duplicates"] = int(duplicated.sum())
    frame = frame[~duplicated]
    # a tick behind the running maximum of the ticks before it (in out_seq order) cannot be placed in time
    behind = (frame["ts"] < frame["ts"].cummax().shift(fill_value=0)) | (
        frame["trade_id"] < frame["trade_id"].cummax().shift(fill_value=0)
    )
    counts["out_of_order"] = int(behind.sum())
    frame = frame[~behind]
    median = frame["price"].rolling(OUTLIER_WINDOW, min_periods=1).median().shift()
    outlier = (frame["price"] / median - 1).abs() * 100 > outlier_pct
    counts["outliers"] = int(outlier.sum())
    frame = frame[~outlier].reset_index(drop=True)
    steps = frame["trade_id"].diff().dropna()
    counts["trade_id_gaps"] = int((steps > 1).sum())
    counts["missing_trades"] = int((steps[steps > 1] - 1).sum())
    counts["kept"] = len(frame)
    return frame, counts


def clean_klines(raw: pd.DataFrame, interval: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop klines with impossible values (high below the open or close, low above, no trades, an open time off
    the interval's grid) and duplicate open times. Gaps (windows with no kline) are counted: a window without a
    trade has no kline by design, so a gap is not an error."""
    width = WIDTH[interval]
    frame = raw.reindex(columns=KLINE_COLUMNS).reset_index(drop=True)
    counts = {"read": len(frame)}
    numeric = frame[KLINE_COLUMNS[2:]].apply(pd.to_numeric, errors="coerce")
    valid = (
        numeric.notna().all(axis=1)
        & (numeric["low"] > 0)
        & (numeric["high"] >= numeric[["open", "close", "low"]].max(axis=1))
        & (numeric["low"] <= numeric[["open", "close"]].min(axis=1))
        & (numeric["trades"] > 0)
        & (numeric["open_time"] % width == 0)
    )
    counts["invalid"] = int((~valid).sum())
    frame = frame[valid].astype({c: "int64" for c in KLINE_COLUMNS[2:]}).sort_values("open_time", kind="stable")
    duplicated = frame["open_time"].duplicated(keep="first")
    counts["duplicates"] = int(duplicated.sum())
    frame = frame[~duplicated].reset_index(drop=True)
    steps = frame["open_time"].diff().dropna()
    counts["gaps"] = int((steps > width).sum())
    counts["kept"] = len(frame)
    return frame, counts
