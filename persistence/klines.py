"""Ticks and klines from trades (no I/O): what the MongoDB persister stores for market data and research.

Time is the events' own ``ts`` (the sequencer's stamp, ns), never a clock: a kline closes when an event stamped at
or after its end arrives, so the same stream always gives the same klines. Intervals without a trade have no kline
(readers fill gaps with the previous close). Prices are ticks, volumes lots, quote volumes quote units, times ns.

A restarted persister rebuilds each symbol's open klines from what it stored (``rebuild``): the open 1s kline from
the ticks of the last second, each longer one from the closed klines of the next shorter interval inside its
window plus that interval's open kline, so a restart reads at most a few hundred documents per symbol.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from wire.enums import Side
from wire.events import Event, TradeExecuted
from wire.venue import SymbolSpec

SECOND = 1_000_000_000
INTERVALS: tuple[tuple[str, int], ...] = (
    ("1s", SECOND),
    ("1m", 60 * SECOND),
    ("5m", 300 * SECOND),
    ("15m", 900 * SECOND),
    ("1h", 3_600 * SECOND),
    ("1d", 86_400 * SECOND),
)
# every interval Binance streams and serves; the store keeps only INTERVALS, the others are merged from the next
# shorter stored one (3m from 1m, 30m from 15m, 4h from 1h) by readers such as the market-data feeds
BINANCE_INTERVALS: tuple[tuple[str, int], ...] = (
    ("1s", SECOND),
    ("1m", 60 * SECOND),
    ("3m", 180 * SECOND),
    ("5m", 300 * SECOND),
    ("15m", 900 * SECOND),
    ("30m", 1_800 * SECOND),
    ("1h", 3_600 * SECOND),
    ("4h", 14_400 * SECOND),
    ("1d", 86_400 * SECOND),
)
WIDTH = dict(BINANCE_INTERVALS)
# the stored documents' ``bucket`` (persistence.buckets reads by it): consecutive trade ids per tick bucket, and
# intervals per kline bucket
TICKS_PER_BUCKET = 1_000
KLINES_PER_BUCKET = 1_000


def tick_bucket(trade_id: int) -> int:
    return trade_id // TICKS_PER_BUCKET


def kline_step(interval: str) -> int:
    """Nanoseconds of open time per bucket of ``interval``'s klines."""
    return WIDTH[interval] * KLINES_PER_BUCKET


def kline_bucket(interval: str, open_time: int) -> int:
    return open_time // kline_step(interval)


Doc = dict[str, Any]


def tick_id(symbol: str, trade_id: int) -> str:
    return f"{symbol}:{trade_id}"


def kline_id(symbol: str, interval: str, open_time: int) -> str:
    return f"{symbol}:{interval}:{open_time}"


@dataclass(slots=True)
class Kline:
    symbol: str
    interval: str
    open_time: int
    open: int
    high: int
    low: int
    close: int
    volume: int = 0
    quote_volume: int = 0
    trades: int = 0
    taker_buy_volume: int = 0
    taker_buy_quote_volume: int = 0
    first_trade_id: int = 0
    last_trade_id: int = 0

    @property
    def end(self) -> int:
        return self.open_time + WIDTH[self.interval]

    def add(self, price: int, qty: int, quote: int, taker_buys: bool, trade_id: int) -> None:
        if not self.trades:
            self.open = self.high = self.low = price
            self.first_trade_id = trade_id
        elif price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        self.close = price
        self.volume += qty
        self.quote_volume += quote
        self.trades += 1
        self.last_trade_id = trade_id
        if taker_buys:
            self.taker_buy_volume += qty
            self.taker_buy_quote_volume += quote

    def merge(self, later: Kline) -> None:
        """Add a kline of a shorter interval that follows everything merged so far."""
        if not later.trades:
            return
        if not self.trades:
            self.open, self.high, self.low, self.first_trade_id = (
                later.open,
                later.high,
                later.low,
                later.first_trade_id,
            )
        self.high = max(self.high, later.high)
        self.low = min(self.low, later.low)
        self.close = later.close
        self.volume += later.volume
        self.quote_volume += later.quote_volume
        self.trades += later.trades
        self.taker_buy_volume += later.taker_buy_volume
        self.taker_buy_quote_volume += later.taker_buy_quote_volume
        self.last_trade_id = later.last_trade_id

    def doc(self) -> Doc:
        return {
            "_id": kline_id(self.symbol, self.interval, self.open_time),
            "symbol": self.symbol,
            "interval": self.interval,
            "open_time": self.open_time,
            "close_time": self.end - 1,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
            "quote_volume": self.quote_volume,
            "trades": self.trades,
            "taker_buy_volume": self.taker_buy_volume,
            "taker_buy_quote_volume": self.taker_buy_quote_volume,
            "first_trade_id": self.first_trade_id,
            "last_trade_id": self.last_trade_id,
            "bucket": kline_bucket(self.interval, self.open_time),
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Kline:
        return cls(**{name: doc[name] for name in cls.__dataclass_fields__})

    @classmethod
    def empty(cls, symbol: str, interval: str, open_time: int) -> Kline:
        return cls(symbol, interval, open_time, 0, 0, 0, 0)


class KlineModel:
    """Folds events into tick documents and closed klines; keeps the open klines of every symbol and interval."""

    def __init__(self, specs: Mapping[str, SymbolSpec], open_klines: Iterable[Kline] = (), now: int = 0,
                 trade_ids: Mapping[str, int] | None = None) -> None:  # fmt: skip
        self.qptl = {s.symbol: s.quote_per_tick_lot for s in specs.values()}
        self.trade_ids = dict(trade_ids or {})  # symbol -> the last trade applied
        # a rebuilt kline whose window ended by ``now`` was closed (and stored) by the event stamped ``now``: keeping
        # it open would close and write it a second time
        self.open: dict[tuple[str, str], Kline] = {(k.symbol, k.interval): k for k in open_klines if k.end > now}
        self.now = now  # ts of the last event applied
        self.next_close = min((k.end for k in self.open.values()), default=1 << 62)
        self.ticks: list[Doc] = []
        self.closed: list[Doc] = []

    def take(self) -> tuple[list[Doc], list[Doc]]:
        """The tick documents and closed klines folded since the last call."""
        ticks, closed = self.ticks, self.closed
        self.ticks, self.closed = [], []
        return ticks, closed

    def apply(self, events: Iterable[Event]) -> list[Event]:
        """Fold ``events``; returns the trades it could not use (unknown symbol), for quarantine."""
        unusable: list[Event] = []
        for ev in events:
            ts = ev.ts
            if ts >= self.next_close:
                self._close_until(ts)
            self.now = ts
            if type(ev) is TradeExecuted:
                if ev.symbol not in self.qptl:
                    unusable.append(ev)
                    continue
                self._trade(ev)
        return unusable

    def _trade(self, ev: TradeExecuted) -> None:
        quote = ev.price * ev.qty * self.qptl[ev.symbol]
        self.trade_ids[ev.symbol] = ev.trade_id
        taker_buys = ev.taker_side is Side.BUY
        self.ticks.append(
            {
                "_id": tick_id(ev.symbol, ev.trade_id),
                "symbol": ev.symbol,
                "trade_id": ev.trade_id,
                "price": ev.price,
                "qty": ev.qty,
                "quote_qty": quote,
                "taker_side": ev.taker_side.name,
                "ts": ev.ts,
                "out_seq": ev.out_seq,
                "bucket": tick_bucket(ev.trade_id),
            }
        )
        for interval, width in INTERVALS:
            key = (ev.symbol, interval)
            kline = self.open.get(key)
            if kline is None:
                kline = self.open[key] = Kline.empty(ev.symbol, interval, ev.ts - ev.ts % width)
                self.next_close = min(self.next_close, kline.end)
            kline.add(ev.price, ev.qty, quote, taker_buys, ev.trade_id)

    def _close_until(self, ts: int) -> None:
        next_close = 1 << 62
        for key, kline in list(self.open.items()):
            end = kline.end
            if end <= ts:
                self.closed.append(kline.doc())
                del self.open[key]
            elif end < next_close:
                next_close = end
        self.next_close = next_close


def rebuild(symbol: str, last_ticks: list[Doc], closed: Mapping[str, list[Doc]]) -> list[Kline]:
    """A symbol's open klines as of its last applied tick: ``last_ticks`` are the ticks of the last tick's second
    (in trade order), ``closed[interval]`` the closed klines of ``interval`` inside the window of the next longer
    interval that holds the last tick, before that tick's own ``interval`` window (in time order)."""
    if not last_ticks:
        return []
    last_ts = last_ticks[-1]["ts"]
    first = Kline.empty(symbol, "1s", last_ts - last_ts % SECOND)
    for t in last_ticks:
        first.add(t["price"], t["qty"], t["quote_qty"], t["taker_side"] == "BUY", t["trade_id"])
    result = [first]
    for (shorter, _), (interval, width) in itertools.pairwise(INTERVALS):
        kline = Kline.empty(symbol, interval, last_ts - last_ts % width)
        for doc in closed.get(shorter, ()):
            kline.merge(Kline.from_doc(doc))
        kline.merge(result[-1])
        result.append(kline)
    return result
