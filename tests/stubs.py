"""Builders shared by the tests: symbol specs with small round numbers, commands, event templates, and a Driver
that feeds commands to an Engine with gap-free in_seq and a fixed stamp.

Event templates carry a zero envelope (``out_seq``, ``in_seq``, ``ts``); ``Driver.stamp`` fills in the envelope of
the command just applied, so a test compares the engine's whole event list with one expression::

    events = d.apply(limit(1, SELL, 100, 5))
    assert events == d.stamp([accepted(1, 1, SELL, 100, 5), delta(1, SELL, 100, 5)])

``Driver.apply`` itself asserts, for every command of every test, that the events carry the command's in_seq and
ts, that out_seq continues without a gap from the previous command, and that the book invariants hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

import msgspec

from engine.core import Engine
from engine.snapshot import EngineState, decode_state
from wire.commands import CancelAll, CancelOrder, Command, PlaceOrder, ReplaceOrder, TakeSnapshot
from wire.enums import CancelReason, OrderType, SelfTradeMode, Side, TimeInForce
from wire.events import (
    BookDelta,
    CancelRejected,
    Event,
    MatchPrevented,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderReplaced,
    TradeExecuted,
)
from wire.reasons import RejectReason
from wire.venue import SymbolSpec

BUY, SELL = Side.BUY, Side.SELL
GTC, IOC, FOK = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK
LIMIT, MARKET, LIMIT_MAKER = OrderType.LIMIT, OrderType.MARKET, OrderType.LIMIT_MAKER

SYM = "BTC"
SYM2 = "ETH"
TS = 1_700_000_000_000_000_000  # the sequencer stamp every Driver command carries
SRC = "t0"


def make_spec(
    symbol: str = SYM,
    *,
    min_qty: int = 1,
    max_qty: int = 1_000,
    min_notional: int = 50,
    max_price: int = 10_000,
    band_bps: int = 1_000,
) -> SymbolSpec:
    """A symbol in readable units: price in ticks of 1, qty in lots of 1, notional = price * qty >= 50,
    prices up to 10 000, a 10 % band around the last trade (100 -> [90, 110])."""
    return SymbolSpec(
        symbol=symbol,
        base=symbol,
        quote="USD",
        tick_size=Decimal(1),
        lot_size=Decimal(1),
        min_qty=min_qty,
        max_qty=max_qty,
        min_notional=min_notional,
        max_price=max_price,
        band_bps=band_bps,
    )


BTC = make_spec(SYM)
ETH = make_spec(SYM2)
SPECS = (BTC, ETH)


# ---- commands --------------------------------------------------------------------------------------------------


def place(
    account: int,
    side: Side,
    type: OrderType,
    tif: TimeInForce,
    price: int,
    qty: int,
    client_oid: str = "",
    symbol: str = SYM,
) -> PlaceOrder:
    return PlaceOrder(SRC, 0, account, symbol, side, type, tif, price, qty, client_oid)


def limit(
    account: int,
    side: Side,
    price: int,
    qty: int,
    *,
    tif: TimeInForce = GTC,
    client_oid: str = "",
    symbol: str = SYM,
) -> PlaceOrder:
    return place(account, side, LIMIT, tif, price, qty, client_oid, symbol)


def market(
    account: int, side: Side, qty: int, *, tif: TimeInForce = IOC, client_oid: str = "", symbol: str = SYM
) -> PlaceOrder:
    return place(account, side, MARKET, tif, 0, qty, client_oid, symbol)


def post_only(account: int, side: Side, price: int, qty: int, *, client_oid: str = "", symbol: str = SYM) -> PlaceOrder:
    return place(account, side, LIMIT_MAKER, GTC, price, qty, client_oid, symbol)


def cancel(account: int, order_id: int = 0, *, client_oid: str = "", symbol: str = SYM) -> CancelOrder:
    return CancelOrder(SRC, 0, account, symbol, order_id, client_oid)


def replace(
    account: int,
    order_id: int,
    price: int,
    qty: int,
    *,
    client_oid: str = "",
    new_client_oid: str = "",
    symbol: str = SYM,
) -> ReplaceOrder:
    return ReplaceOrder(SRC, 0, account, symbol, order_id, client_oid, new_client_oid, price, qty)


def cancel_all(account: int, *, symbol: str = SYM) -> CancelAll:
    return CancelAll(SRC, 0, account, symbol)


def take_snapshot() -> TakeSnapshot:
    return TakeSnapshot(SRC, 0)


# ---- event templates (envelope left at zero; Driver.stamp fills it in) -------------------------------------------


def accepted(
    order_id: int,
    account: int,
    side: Side,
    price: int,
    qty: int,
    *,
    type: OrderType = LIMIT,
    tif: TimeInForce = GTC,
    client_oid: str = "",
    symbol: str = SYM,
    stp: SelfTradeMode = SelfTradeMode.EXPIRE_TAKER,
) -> OrderAccepted:
    return OrderAccepted(0, 0, 0, symbol, order_id, account, client_oid, side, type, tif, price, qty, 0, stp)


def rejected(
    account: int, reason: RejectReason, detail: str, *, client_oid: str = "", symbol: str = SYM
) -> OrderRejected:
    return OrderRejected(0, 0, 0, symbol, account, client_oid, reason, detail)


def trade(
    trade_id: int,
    price: int,
    qty: int,
    taker_side: Side,
    *,
    maker: tuple[int, int, int],
    taker: tuple[int, int, int],
    symbol: str = SYM,
) -> TradeExecuted:
    """``maker`` and ``taker`` are (order_id, account, leaves after this fill)."""
    return TradeExecuted(0, 0, 0, symbol, trade_id, price, qty, taker_side, *maker, *taker)


def canceled(
    order_id: int, account: int, leaves: int, reason: CancelReason, *, client_oid: str = "", symbol: str = SYM
) -> OrderCanceled:
    return OrderCanceled(0, 0, 0, symbol, order_id, account, client_oid, leaves, reason)


def prevented(
    match_id: int,
    account: int,
    price: int,
    mode: SelfTradeMode,
    *,
    taker: tuple[int, int],
    maker: tuple[int, int],
    symbol: str = SYM,
) -> MatchPrevented:
    """``taker`` and ``maker`` are (order_id, the open quantity the stop expired of it)."""
    return MatchPrevented(0, 0, 0, symbol, match_id, account, taker[0], maker[0], price, mode, taker[1], maker[1])


def replaced(
    order_id: int,
    new_order_id: int,
    account: int,
    price: int,
    qty: int,
    *,
    kept: bool,
    client_oid: str = "",
    symbol: str = SYM,
) -> OrderReplaced:
    return OrderReplaced(0, 0, 0, symbol, order_id, new_order_id, account, client_oid, price, qty, kept)


def cancel_rejected(
    account: int,
    reason: RejectReason,
    detail: str,
    *,
    order_id: int = 0,
    client_oid: str = "",
    symbol: str = SYM,
) -> CancelRejected:
    return CancelRejected(0, 0, 0, symbol, account, order_id, client_oid, reason, detail)


def delta(update_id: int, side: Side, price: int, qty: int, *, symbol: str = SYM) -> BookDelta:
    return BookDelta(0, 0, 0, symbol, update_id, side, price, qty)


def stamp(templates: Iterable[Event], first_out_seq: int, in_seq: int, ts: int) -> list[Event]:
    """The templates with consecutive out_seq from ``first_out_seq`` and the given in_seq and ts."""
    return [
        msgspec.structs.replace(ev, out_seq=first_out_seq + i, in_seq=in_seq, ts=ts) for i, ev in enumerate(templates)
    ]


# ---- driving an engine -------------------------------------------------------------------------------------------


class Driver:
    """Feeds commands to an Engine with in_seq = previous + 1 and ts = TS, checking every event's envelope and the
    book invariants after each command."""

    def __init__(self, specs: Sequence[SymbolSpec] = SPECS, engine: Engine | None = None) -> None:
        self.engine = Engine(specs, risk=False) if engine is None else engine
        self.in_seq = self.engine.in_seq
        self.out_seq = self.engine.out_seq
        self._first_out_seq = self.out_seq + 1

    def apply(self, cmd: Command) -> list[Event]:
        in_seq = self.in_seq + 1
        events = self.engine.apply(in_seq, TS, cmd)
        for i, ev in enumerate(events):
            envelope = (ev.out_seq, ev.in_seq, ev.ts)
            assert envelope == (self.out_seq + 1 + i, in_seq, TS), f"event {i} of command {in_seq}: {ev!r}"
        self.engine.check_invariants()
        self.in_seq = in_seq
        self._first_out_seq = self.out_seq + 1
        self.out_seq += len(events)
        return events

    def run(self, *cmds: Command) -> list[Event]:
        """Apply several commands (test set-up); returns all their events."""
        return [ev for cmd in cmds for ev in self.apply(cmd)]

    def stamp(self, templates: Iterable[Event]) -> list[Event]:
        """The templates with the envelope of the command applied last."""
        return stamp(templates, self._first_out_seq, self.in_seq, TS)

    def levels(self, side: Side, symbol: str = SYM) -> list[tuple[int, list[tuple[int, int]]]]:
        return book_levels(self.engine, symbol, side)

    def depth(self, side: Side, symbol: str = SYM) -> list[tuple[int, int]]:
        return book_depth(self.engine, symbol, side)


def book_levels(engine: Engine, symbol: str, side: Side) -> list[tuple[int, list[tuple[int, int]]]]:
    """One side of a book, best price first: (price, [(order_id, leaves), ...] in queue order)."""
    book = engine.matchers[symbol].book
    return [(lvl.price, [(o.order_id, o.leaves) for o in lvl]) for lvl in book.side(side).iter_levels()]


def book_depth(engine: Engine, symbol: str, side: Side) -> list[tuple[int, int]]:
    """One side of a book, best price first: (price, total open quantity)."""
    book = engine.matchers[symbol].book
    return [(lvl.price, lvl.total) for lvl in book.side(side).iter_levels()]


def state_without_seqs(engine: Engine) -> EngineState:
    """The engine's whole state as its snapshot holds it, with in_seq and out_seq blanked: what a rejected command
    must leave exactly as it was (its rejection event advances only out_seq)."""
    return msgspec.structs.replace(decode_state(engine.snapshot()), in_seq=0, out_seq=0)
