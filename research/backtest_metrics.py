"""What a backtest's fills and equity curve add up to: round-trip trades and the performance metrics.

Conventions (docs/research.md, "Backtester"): returns are simple bar-to-bar returns of the equity marked at each
close; Sharpe and Sortino use their arithmetic mean with a zero risk-free rate, scaled by sqrt(periods per year);
volatility is the sample standard deviation (ddof=1) scaled the same way; the annualized return compounds the
total return over the run's length in years. The drawdown duration is the longest stretch, in bars, from an
equity peak until equity is back at that peak (or the end of the run).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from research.backtest import Fill

NS_PER_YEAR = 365.25 * 86_400 * 1_000_000_000  # crypto trades every day: a year of bars is 365.25 days of them


class Trade(NamedTuple):
    """One round trip: a position opened (or added to) and then closed, in full or in part. ``size`` is signed
    lots (> 0: long); ``entry_price`` is the average over the fills that built the position."""

    entry_bar: int
    exit_bar: int
    entry_time: pd.Timestamp
    exit_time: pd.Timestamp
    size: int
    entry_price: float
    exit_price: float
    fees: float  # this trade's share of its entry fills' fees plus its exit fill's
    pnl: float  # after fees


def round_trips(fills: Sequence[Fill], lot: float) -> list[Trade]:
    """Fills to round trips. A fill that crosses zero closes the open trade and opens the opposite one with the
    rest; a fill that reduces the position closes that part. A position still open at the end is no trade."""
    trades: list[Trade] = []
    size, avg, entry_fees, entry_bar = 0, 0.0, 0.0, 0
    entry_time = pd.Timestamp(0)  # set by the first fill, which always opens
    for f in fills:
        qty, fee_per_lot = f.qty, f.fee / abs(f.qty)
        if size and (size > 0) != (qty > 0):  # reduces or flips: close min(|size|, |qty|) lots
            closed = min(abs(size), abs(qty))
            part = closed / abs(size)
            sign = 1 if size > 0 else -1
            fees = entry_fees * part + fee_per_lot * closed
            pnl = sign * closed * lot * (f.price - avg) - fees
            trades.append(Trade(entry_bar, f.bar, entry_time, f.time, sign * closed, avg, f.price, fees, pnl))
            entry_fees -= entry_fees * part
            size += sign * -closed
            qty += sign * closed
            if size == 0:
                avg, entry_fees = 0.0, 0.0
        if qty:  # opens or adds
            if size == 0:
                entry_bar, entry_time = f.bar, f.time
            # a fresh position takes the price as is: (p * q) / q is not always p in floating point
            avg = f.price if size == 0 else (avg * abs(size) + f.price * abs(qty)) / (abs(size) + abs(qty))
            entry_fees += fee_per_lot * abs(qty)
            size += qty
    return trades


def periods_per_year_of(index: pd.Index) -> float:
    """Bars per year from the median spacing of a time index (1.0 when the index holds no times)."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return 1.0
    step = float(np.median(np.diff(index.asi8)))
    unit_ns = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0}[index.unit]
    return NS_PER_YEAR / (step * unit_ns)


def drawdown(equity: pd.Series) -> pd.Series:
    """Fraction below the running peak at each bar (<= 0)."""
    values = equity.to_numpy(dtype=float)
    return pd.Series(values / np.maximum.accumulate(values) - 1.0, index=equity.index, name="drawdown")


def longest_drawdown(equity: np.ndarray) -> tuple[int, int]:
    """(peak bar, end bar) of the longest drawdown: from a peak to the first bar back at (or above) it; one still
    open at the end runs to the last bar. (0, 0) when equity never falls below its peak."""
    # vectorized (a year of minute bars is half a million): for every bar, the last bar at a peak at or before it
    at_peak = equity >= np.maximum.accumulate(equity)
    bars = np.arange(len(equity))
    last_peak = np.maximum.accumulate(np.where(at_peak, bars, 0))
    recovered = at_peak & np.concatenate(([False], ~at_peak[:-1]))
    before = np.concatenate(([0], last_peak[:-1]))
    span = np.where(~at_peak, bars - last_peak, np.where(recovered, bars - before, 0))
    end = int(np.argmax(span))  # the first bar the longest span is reached: the first of equally long ones
    return (end - int(span[end]), end) if span[end] > 0 else (0, 0)


def compute_metrics(
    equity: pd.Series,
    fills: Sequence[Fill],
    trades: Sequence[Trade],
    lot: float,
    initial_cash: float,
    periods_per_year: float | None,
) -> dict[str, float]:
    values = equity.to_numpy(dtype=float)
    ppy = periods_per_year if periods_per_year is not None else periods_per_year_of(equity.index)
    before = np.concatenate(([initial_cash], values[:-1]))
    # after a ruin (research.backtest) equity stays at <= 0: those bars return nothing
    returns = np.divide(np.diff(values, prepend=initial_cash), before, out=np.zeros(len(values)), where=before > 0)
    total = values[-1] / initial_cash - 1.0
    years = len(values) / ppy
    mean = float(returns.mean())
    std = float(returns.std(ddof=1)) if len(returns) > 1 else 0.0
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    dd = drawdown(equity).to_numpy()
    dd_start, dd_end = longest_drawdown(values)
    traded = sum(abs(f.qty) * lot * f.price for f in fills)
    wins = sum(1 for t in trades if t.pnl > 0)
    metrics: dict[str, float] = {
        "final_equity": float(values[-1]),
        "total_return": float(total),
        "annualized_return": _annualized(float(total), years),
        "volatility": std * math.sqrt(ppy),
        "sharpe": mean / std * math.sqrt(ppy) if std > 0 else math.nan,
        "sortino": mean / downside * math.sqrt(ppy) if downside > 0 else math.nan,
        "max_drawdown": float(dd.min()),
        "max_drawdown_duration_bars": float(dd_end - dd_start),
        "trades": float(len(trades)),
        "fills": float(len(fills)),
        "win_rate": wins / len(trades) if trades else math.nan,
        "turnover": traded / float(np.mean(values)),  # traded notional over average equity, for the whole run
        "fees_paid": float(sum(f.fee for f in fills)),
        "periods_per_year": float(ppy),
    }
    if isinstance(equity.index, pd.DatetimeIndex):
        span = equity.index[dd_end] - equity.index[dd_start]
        metrics["max_drawdown_duration_days"] = float(span / pd.Timedelta(days=1))
    return metrics


def _annualized(total: float, years: float) -> float:
    if total <= -1.0:
        return -1.0
    try:
        return float((1.0 + total) ** (1.0 / years)) - 1.0
    except OverflowError:  # a few minutes of bars compound into more than a float holds
        return math.inf
