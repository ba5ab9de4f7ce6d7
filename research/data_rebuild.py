"""Klines rebuilt from clean ticks with the persister's own ``persistence.klines.Kline`` arithmetic, and the check
of the stored klines against them.

Only windows the ticks cover whole are compared: a window is closed when a later tick exists at or after its end
(the persister closes on any event, so it may have closed more), and it must start after the first tick read, since
an incremental run does not see the earlier ticks of a window that began before it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from persistence.klines import INTERVALS, Kline

COMPARED = ("open", "high", "low", "close", "volume", "quote_volume", "trades", "taker_buy_volume")


def rebuild_klines(ticks: pd.DataFrame, symbol: str, after_ts: int = -1) -> dict[str, list[Kline]]:
    """The closed klines of every stored interval that ``ticks`` (clean, in order) cover whole: those opening
    after ``after_ts``, the time of the last tick an earlier run read (its ticks are not in ``ticks``)."""
    result: dict[str, list[Kline]] = {interval: [] for interval, _ in INTERVALS}
    open_: dict[str, Kline] = {}
    rows = ticks[["ts", "price", "qty", "quote_qty", "taker_side", "trade_id"]].itertuples(index=False)
    for ts, price, qty, quote, side, trade_id in rows:
        for interval, width in INTERVALS:
            kline = open_.get(interval)
            if kline is None or ts >= kline.end:
                if kline is not None and kline.open_time > after_ts:
                    result[interval].append(kline)
                kline = open_[interval] = Kline.empty(symbol, interval, ts - ts % width)
            kline.add(int(price), int(qty), int(quote), side == "BUY", int(trade_id))
    # the klines still open at the last tick are not closed yet: they are left out
    return result


def check_klines(rebuilt: list[Kline], stored: pd.DataFrame) -> dict[str, Any]:
    """Compare rebuilt klines with the stored ones of the same windows."""
    by_time = {int(r.open_time): r for r in stored.itertuples(index=False)} if not stored.empty else {}
    matched = mismatched = missing = 0
    examples: list[int] = []
    for k in rebuilt:
        row = by_time.get(k.open_time)
        if row is None:
            missing += 1
            continue
        if all(getattr(k, name) == int(getattr(row, name)) for name in COMPARED):
            matched += 1
        else:
            mismatched += 1
            if len(examples) < 5:
                examples.append(k.open_time)
    return {
        "rebuilt": len(rebuilt),
        "matched": matched,
        "mismatched": mismatched,
        "missing_in_store": missing,
        "mismatched_open_times": examples,
    }
