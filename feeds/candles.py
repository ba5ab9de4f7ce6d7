"""A symbol's candles at every Binance interval, kept live from its trades, and its rolling 24-hour statistics.

Candles close by time. Trades carry the sequencer's stamp, so a candle closes when a trade stamped at or after its
end arrives, or when the feed's clock (minus a grace period for trades still in the pipeline) passes its end. An
interval without a trade gets a flat candle at the last close, as Binance's do. A trade that arrives after its
candle closed by the clock (the pipeline lagged more than the grace) is added to that candle, which is sent again,
closed, with the trade in it: the candles always equal those recomputed from the engine's trades.

The rolling statistics (the 24-hour ticker, and the 1m to 7d windows of ``GET /api/v3/ticker`` and of
``<symbol>@ticker_<window>``) are Binance's rolling-window kind, at minute granularity: a window of N minutes is the
last N 1m candles, the open one included.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from persistence.klines import BINANCE_INTERVALS, Kline

KEEP = 1_000  # closed candles kept per interval (Binance's largest klines page)
DAY_MINUTES = 1_440
MINUTE = 60_000_000_000


# Binance's rolling window sizes: 1m-59m, 1h-23h, 1d-7d (units not combined)
_WINDOW_SIZE = re.compile(r"^(?:(?P<m>[1-9]|[1-5][0-9])m|(?P<h>[1-9]|1[0-9]|2[0-3])h|(?P<d>[1-7])d)$")


def window_minutes(size: str) -> int | None:
    """The minutes in a rolling window size (``"4h"``: 240), or None for a size Binance does not take."""
    m = _WINDOW_SIZE.match(size)
    if m is None:
        return None
    return int(m["m"] or 0) + int(m["h"] or 0) * 60 + int(m["d"] or 0) * DAY_MINUTES


@dataclass(slots=True)
class Window:
    """Rolling statistics: ``kline`` merges the window's candles (``trades`` 0: no trade in the window)."""

    kline: Kline
    prev_close: int  # the last price before the window (0: none)


class SymbolCandles:
    def __init__(self, symbol: str, qptl: int, last_price: int = 0) -> None:
        self.symbol = symbol
        self.qptl = qptl
        self.last_price = last_price  # the close flat candles take
        self.open: dict[str, Kline] = {}
        self.closed: dict[str, deque[Kline]] = {
            i: deque(maxlen=DAY_MINUTES + 1 if i == "1m" else KEEP) for i, _ in BINANCE_INTERVALS
        }
        self.first_open: dict[str, int] = {}  # per interval: the open time of the oldest candle held (memory's start)
        self.before_memory = last_price  # the last price before the oldest 1m candle held (0: none)

    def seed(self, open_klines: Iterable[Kline], closed_1m: Iterable[Kline], before: int) -> None:
        """Start from stored history: the open candles as of the feed's start, the day's closed 1m candles and the
        last price before them (0: none)."""
        self.before_memory = before
        for k in open_klines:
            self.open[k.interval] = k
            self.first_open.setdefault(k.interval, k.open_time)
        minutes = self.closed["1m"]
        for k in closed_1m:
            minutes.append(k)
            self.first_open["1m"] = min(self.first_open.get("1m", k.open_time), k.open_time)

    def trade(self, ts: int, price: int, qty: int, taker_buys: bool, trade_id: int, out: list[Kline]) -> None:
        """Add one trade; appends to ``out`` every candle whose state a client must see (closed ones first)."""
        quote = price * qty * self.qptl
        for interval, width in BINANCE_INTERVALS:
            start = ts - ts % width
            k = self.open.get(interval)
            if k is not None and start < k.open_time:
                self._late(interval, start, price, qty, quote, taker_buys, trade_id, out)
                continue
            if k is None or start >= k.end:
                self._roll(interval, width, start, out)
                k = self.open[interval]
            k.add(price, qty, quote, taker_buys, trade_id)
            out.append(k)
        self.last_price = price

    def advance(self, now: int, out: list[Kline]) -> None:
        """Close every candle that ended at or before ``now`` (ns), opening flat ones up to the one holding it."""
        for interval, width in BINANCE_INTERVALS:
            k = self.open.get(interval)
            # no candle yet: the first trade opens one (a flat one opened now could not take a trade stamped
            # before it that is still in the pipeline)
            if k is not None and k.end <= now:
                self._roll(interval, width, now - now % width, out)
                out.append(self.open[interval])

    def _roll(self, interval: str, width: int, start: int, out: list[Kline]) -> None:
        """Close the open candle of ``interval`` and the flat ones after it, and open the one at ``start``."""
        closed = self.closed[interval]
        k = self.open.get(interval)
        if k is not None:
            closed.append(k)
            out.append(k)
            close = k.close if k.trades else self.last_price
            # flat candles for the silent intervals in between, as many as memory keeps
            t = max(k.end, start - width * (closed.maxlen or KEEP))
            while t < start:
                closed.append(self._flat(interval, t, close))
                t += width
        self.open[interval] = self._flat(interval, start, self.last_price)
        self.first_open.setdefault(interval, start)

    def _flat(self, interval: str, open_time: int, close: int) -> Kline:
        return Kline(self.symbol, interval, open_time, close, close, close, close, first_trade_id=-1, last_trade_id=-1)

    def _late(self, interval: str, start: int, price: int, qty: int, quote: int, taker_buys: bool, trade_id: int,
              out: list[Kline]) -> None:  # fmt: skip
        """A trade for a candle the clock already closed: add it there, and move the flat candles after it (all
        silent since, or the trade would not be late) to its new close."""
        closed = self.closed[interval]
        for back, k in enumerate(reversed(closed)):
            if k.open_time == start:
                k.add(price, qty, quote, taker_buys, trade_id)
                out.append(k)
                later = [closed[len(closed) - back + n] for n in range(back)] + [self.open[interval]]
                for flat in later:
                    flat.open = flat.high = flat.low = flat.close = price
                    out.append(flat)
                return
            if k.open_time < start:
                return  # older than memory: only the store has it

    def is_closed(self, k: Kline) -> bool:
        return self.open.get(k.interval) is not k

    def window(self, minutes: int = DAY_MINUTES, older: Iterable[Kline] = ()) -> Window:
        """Rolling statistics over the last ``minutes`` 1m candles, the open one included: Binance's rolling window
        at minute granularity, opened at the first of them. Memory holds a day of minutes; for a longer window
        ``older`` gives the stored candles of the part before what memory holds."""
        current = self.open.get("1m")
        held = self.closed["1m"]
        if current is None:  # no trade yet
            total = Kline(self.symbol, "1d", 0, self.last_price, self.last_price, self.last_price, self.last_price,
                          first_trade_id=-1, last_trade_id=-1)  # fmt: skip
            return Window(total, 0)
        start = current.open_time - (minutes - 1) * MINUTE
        total = Kline(self.symbol, "1d", start, 0, 0, 0, 0)
        for k in older:
            if k.open_time >= start:
                total.merge(k)
        inside = [current]
        prev = self.before_memory
        for k in reversed(held):
            if k.open_time < start:
                prev = k.close  # a flat candle's close is the last price too
                break
            inside.append(k)
        for k in reversed(inside):
            total.merge(k)
        if not total.trades:
            total.open = total.high = total.low = total.close = self.last_price
            total.first_trade_id = total.last_trade_id = -1
        return Window(total, prev)

    def history(self, interval: str) -> list[Kline]:
        """The candles held in memory for ``interval``, oldest first, the open one last."""
        out = list(self.closed[interval])
        k = self.open.get(interval)
        if k is not None:
            out.append(k)
        return out
