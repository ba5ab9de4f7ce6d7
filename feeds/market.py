"""The feed's market state: every symbol's level book, recent trades and candles, folded from the engine's events.

``Market.apply`` takes one engine batch (whole commands, in out_seq order) and returns what changed in it, per
symbol: the book's levels with the range of update ids they cover, the trades, and the candles touched. The hub
turns that into stream messages; REST reads the state itself. Both run on one event loop, so a REST depth snapshot
is always exactly the book as of its ``lastUpdateId``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from engine.snapshot import EngineState
from feeds.book import LevelBook
from feeds.candles import SymbolCandles
from persistence.klines import Kline
from wire.enums import Side
from wire.events import BookDelta, Event, TradeExecuted
from wire.venue import SymbolSpec, Venue

KEEP_TRADES = 1_000  # recent trades per symbol (Binance's largest /trades page)


class OutOfSequence(Exception):
    """An event that does not follow the last one applied (a gap in out_seq, or in a symbol's update ids)."""


@dataclass(slots=True)
class SymbolChanges:
    first_update: int = 0  # the first update id this batch used for the symbol's book (0: the book did not change)
    last_update: int = 0
    levels: dict[tuple[Side, int], int] = field(default_factory=dict)  # (side, price) -> new total
    trades: list[TradeExecuted] = field(default_factory=list)
    candles: list[Kline] = field(default_factory=list)


class SymbolMarket:
    __slots__ = ("book", "candles", "last_price", "spec", "trade_id", "trades")

    def __init__(self, spec: SymbolSpec) -> None:
        self.spec = spec
        self.book = LevelBook()
        self.trades: deque[TradeExecuted] = deque(maxlen=KEEP_TRADES)
        self.candles = SymbolCandles(spec.symbol, spec.quote_per_tick_lot)
        self.trade_id = 0  # the last trade's id
        self.last_price = 0


class Market:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.symbols = {s.symbol: SymbolMarket(s) for s in venue.symbols}
        self.out_seq = 0  # the last event applied
        self.ts = 0  # its stamp (ns)

    def load(self, state: EngineState) -> None:
        """Start from an engine snapshot: each symbol's levels summed from its resting orders, its ids, its price."""
        self.out_seq = state.out_seq
        for s in state.symbols:
            m = self.symbols.get(s.symbol)
            if m is None:
                continue
            m.book = LevelBook(s.update_id)
            levels: dict[tuple[Side, int], int] = {}
            for o in s.orders:
                levels[(o.side, o.price)] = levels.get((o.side, o.price), 0) + o.leaves
            for (side, price), qty in levels.items():
                m.book.set(side, price, qty)
            m.trade_id = s.trade_id
            m.last_price = m.candles.last_price = s.last_price

    def apply(self, events: list[Event]) -> dict[str, SymbolChanges]:
        """Fold one batch (contiguous out_seqs). Events already applied are skipped (the events stream and the PUB
        socket overlap after a catch-up); a batch that starts past the next out_seq raises OutOfSequence untouched."""
        changes: dict[str, SymbolChanges] = {}
        if not events or events[-1].out_seq <= self.out_seq:
            return changes
        first = self.out_seq + 1
        if events[0].out_seq > first:
            raise OutOfSequence(f"event {events[0].out_seq} after {self.out_seq}")
        for ev in events[first - events[0].out_seq :]:
            self.out_seq, self.ts = ev.out_seq, ev.ts
            kind = type(ev)
            if kind is BookDelta:
                self._delta(ev, changes)  # type: ignore[arg-type]
            elif kind is TradeExecuted:
                self._trade(ev, changes)  # type: ignore[arg-type]
        return changes

    def _delta(self, ev: BookDelta, changes: dict[str, SymbolChanges]) -> None:
        m = self.symbols.get(ev.symbol)
        if m is None:
            return
        book = m.book
        if ev.update_id != book.update_id + 1:
            raise OutOfSequence(f"{ev.symbol} update {ev.update_id} after {book.update_id}")
        book.update_id = ev.update_id
        book.set(ev.side, ev.price, ev.qty)
        c = changes.get(ev.symbol)
        if c is None:
            c = changes[ev.symbol] = SymbolChanges()
        if not c.first_update:
            c.first_update = ev.update_id
        c.last_update = ev.update_id
        c.levels[(ev.side, ev.price)] = ev.qty

    def _trade(self, ev: TradeExecuted, changes: dict[str, SymbolChanges]) -> None:
        m = self.symbols.get(ev.symbol)
        if m is None:
            return
        m.trade_id = ev.trade_id
        m.last_price = ev.price
        m.trades.append(ev)
        c = changes.get(ev.symbol)
        if c is None:
            c = changes[ev.symbol] = SymbolChanges()
        c.trades.append(ev)
        m.candles.trade(ev.ts, ev.price, ev.qty, ev.taker_side is Side.BUY, ev.trade_id, c.candles)

    def advance(self, now: int) -> dict[str, list[Kline]]:
        """Close candles by the clock (``now`` ns, already less the grace period)."""
        out: dict[str, list[Kline]] = {}
        for symbol, m in self.symbols.items():
            closed: list[Kline] = []
            m.candles.advance(now, closed)
            if closed:
                out[symbol] = closed
        return out
