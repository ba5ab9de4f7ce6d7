"""A deliberately naive reference engine: the documented semantics of engine.matching, written as plainly as
possible, to serve as an oracle for the property tests.

Each symbol keeps one flat list of resting orders in arrival order. Every matching step filters and sorts that list
afresh; level totals are summed when needed; the price band is computed with fractions. There are no indexes, no
linked lists and no incremental totals, so agreement with the engine on random command streams means the engine's
data structures did not change the meaning.

Validation checks run in the same order as the engine's (the documented semantics do not fix an order, and a
command with two faults is refused for one of them); the free-text ``detail`` of a refusal is left empty and the
property tests compare it blanked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from wire.commands import (
    CancelAll,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    PlaceOrder,
    ReplaceOrder,
    SetFeeRates,
    TakeSnapshot,
    Withdraw,
)
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

MAX_CLIENT_OID = 64

BUY, SELL = Side.BUY, Side.SELL
GTC, FOK = TimeInForce.GTC, TimeInForce.FOK
MARKET, LIMIT_MAKER = OrderType.MARKET, OrderType.LIMIT_MAKER


@dataclass(eq=False)
class RefOrder:
    order_id: int
    account: int
    side: Side
    price: int
    leaves: int
    client_oid: str
    type: OrderType
    stp: SelfTradeMode = SelfTradeMode.EXPIRE_TAKER


@dataclass
class RefSymbol:
    spec: SymbolSpec
    orders: list[RefOrder] = field(default_factory=list)  # resting orders in the order they came to rest
    last_price: int = 0
    trade_id: int = 0
    prevented_id: int = 0
    update_id: int = 0

    def band(self) -> tuple[int, int] | None:
        """[ceil(p(1-b)), floor(p(1+b))] around the last trade price, or None before any trade or without a band."""
        if not self.last_price or not self.spec.band_bps:
            return None
        b = Fraction(self.spec.band_bps, 10_000)
        return math.ceil(self.last_price * (1 - b)), math.floor(self.last_price * (1 + b))

    def level_total(self, side: Side, price: int) -> int:
        return sum(o.leaves for o in self.orders if o.side == side and o.price == price)

    def open_with_client_oid(self, account: int, client_oid: str) -> RefOrder | None:
        for o in self.orders:
            if o.account == account and o.client_oid == client_oid:
                return o
        return None

    def book(self, side: Side) -> list[tuple[int, list[tuple[int, int]]]]:
        """One side, best price first: (price, [(order_id, leaves), ...] in queue order)."""
        prices = sorted({o.price for o in self.orders if o.side == side}, reverse=side == BUY)
        return [(p, [(o.order_id, o.leaves) for o in self.orders if o.side == side and o.price == p]) for p in prices]


def crosses(taker_side: Side, limit: int | None, maker_price: int) -> bool:
    if limit is None:
        return True
    return maker_price <= limit if taker_side == BUY else maker_price >= limit


def queue(sym: RefSymbol, taker_side: Side, limit: int | None) -> list[RefOrder]:
    """Resting orders a taker could meet, best price first and, within a price, in arrival order (stable sort)."""
    makers = [o for o in sym.orders if o.side != taker_side and crosses(taker_side, limit, o.price)]
    return sorted(makers, key=lambda o: o.price if taker_side == BUY else -o.price)


class ReferenceEngine:
    def __init__(self, specs: list[SymbolSpec] | tuple[SymbolSpec, ...]) -> None:
        self.symbols = {s.symbol: RefSymbol(s) for s in specs}
        self.in_seq = 0
        self.out_seq = 0
        self.ts = 0
        self.out: list[Event] = []
        self.touched: list[tuple[Side, int]] = []  # levels changed by this command, in order, with repeats

    def apply(self, in_seq: int, ts: int, cmd: Command) -> list[Event]:
        assert in_seq == self.in_seq + 1
        self.in_seq, self.ts = in_seq, ts
        self.out, self.touched = [], []
        if isinstance(cmd, TakeSnapshot | CreateAccount | Deposit | Withdraw | SetFeeRates):
            return []  # the reference models matching only; funding is tested in tests/engine/test_accounts.py
        sym = self.symbols.get(cmd.symbol)
        if sym is None:
            if isinstance(cmd, PlaceOrder):
                self.out.append(
                    OrderRejected(
                        *self._next(), cmd.symbol, cmd.account, cmd.client_oid, RejectReason.UNKNOWN_SYMBOL, ""
                    )
                )
            elif isinstance(cmd, CancelAll):
                self._cancel_rejected(cmd.symbol, cmd.account, 0, "", RejectReason.UNKNOWN_SYMBOL)
            else:
                self._cancel_rejected(
                    cmd.symbol, cmd.account, cmd.order_id, cmd.client_oid, RejectReason.UNKNOWN_SYMBOL
                )
            return self.out
        if isinstance(cmd, PlaceOrder):
            self._place(sym, cmd)
        elif isinstance(cmd, CancelOrder):
            self._cancel(sym, cmd)
        elif isinstance(cmd, ReplaceOrder):
            self._replace(sym, cmd)
        else:
            self._cancel_all(sym, cmd)
        seen: list[tuple[Side, int]] = []
        for level in self.touched:
            if level not in seen:
                seen.append(level)
        for side, price in seen:
            sym.update_id += 1
            self.out.append(
                BookDelta(*self._next(), sym.spec.symbol, sym.update_id, side, price, sym.level_total(side, price))
            )
        return self.out

    # ---- helpers --------------------------------------------------------------------------------------------------

    def _next(self) -> tuple[int, int, int]:
        self.out_seq += 1
        return self.out_seq, self.in_seq, self.ts

    def _cancel_rejected(self, symbol: str, account: int, order_id: int, client_oid: str, reason: RejectReason) -> None:
        self.out.append(CancelRejected(*self._next(), symbol, account, order_id, client_oid, reason, ""))

    def _canceled(
        self, sym: RefSymbol, order_id: int, account: int, client_oid: str, leaves: int, why: CancelReason
    ) -> None:
        self.out.append(OrderCanceled(*self._next(), sym.spec.symbol, order_id, account, client_oid, leaves, why))

    def _unrest(self, sym: RefSymbol, order: RefOrder) -> None:
        sym.orders = [o for o in sym.orders if o is not order]
        self.touched.append((order.side, order.price))

    def _qty_problem(self, sym: RefSymbol, qty: int) -> RejectReason | None:
        if qty <= 0:
            return RejectReason.QTY_NOT_POSITIVE
        if qty < sym.spec.min_qty:
            return RejectReason.QTY_BELOW_MIN
        if qty > sym.spec.max_qty:
            return RejectReason.QTY_ABOVE_MAX
        return None

    def _limit_problem(self, sym: RefSymbol, price: int, qty: int) -> RejectReason | None:
        spec = sym.spec
        problem = self._qty_problem(sym, qty)
        if problem is not None:
            return problem
        if price <= 0:
            return RejectReason.PRICE_NOT_POSITIVE
        if price > spec.max_price:
            return RejectReason.PRICE_TOO_HIGH
        band = sym.band()
        if band is not None and not band[0] <= price <= band[1]:
            return RejectReason.PRICE_OUT_OF_BAND
        if price * qty < spec.min_notional:
            return RejectReason.NOTIONAL_BELOW_MIN
        return None

    def _would_take(self, sym: RefSymbol, side: Side, price: int) -> bool:
        return bool(queue(sym, side, price))

    def _find(self, sym: RefSymbol, account: int, order_id: int, client_oid: str) -> RefOrder | None:
        for o in sym.orders:
            if order_id:
                if o.order_id == order_id and o.account == account and (not client_oid or o.client_oid == client_oid):
                    return o
            elif client_oid and o.account == account and o.client_oid == client_oid:
                return o
        return None

    # ---- commands -------------------------------------------------------------------------------------------------

    def _place_problem(self, sym: RefSymbol, cmd: PlaceOrder) -> RejectReason | None:
        if (cmd.type == MARKET and cmd.tif == GTC) or (cmd.type == LIMIT_MAKER and cmd.tif != GTC):
            return RejectReason.INVALID_ORDER_TYPE
        if len(cmd.client_oid) > MAX_CLIENT_OID:
            return RejectReason.INVALID_FIELD
        if cmd.quote_qty:
            spec = sym.spec
            if cmd.type != MARKET or cmd.qty:
                return RejectReason.INVALID_FIELD
            if cmd.quote_qty < 0:
                return RejectReason.QTY_NOT_POSITIVE
            if cmd.quote_qty < spec.min_notional * spec.quote_per_tick_lot:
                return RejectReason.NOTIONAL_BELOW_MIN
        elif cmd.type == MARKET:
            spec = sym.spec
            problem = self._qty_problem(sym, cmd.qty)
            if problem is not None:
                return problem
            if sym.last_price and sym.last_price * cmd.qty < spec.min_notional:
                return RejectReason.NOTIONAL_BELOW_MIN
        else:
            problem = self._limit_problem(sym, cmd.price, cmd.qty)
            if problem is not None:
                return problem
        if cmd.client_oid and sym.open_with_client_oid(cmd.account, cmd.client_oid) is not None:
            return RejectReason.DUPLICATE_CLIENT_ORDER_ID
        if cmd.type == LIMIT_MAKER and self._would_take(sym, cmd.side, cmd.price):
            return RejectReason.POST_ONLY_WOULD_TAKE
        return None

    def _market_limit(self, sym: RefSymbol, side: Side) -> int | None:
        band = sym.band()
        return None if band is None else (band[1] if side == BUY else band[0])

    def _quote_lots(self, sym: RefSymbol, cmd: PlaceOrder) -> int:
        """The lots a market order's quote amount comes to, one lot at a time: the queue it can reach, best first
        (up to its own order, unless that order would be expired); a buy's money left when that runs out buys at
        the market limit price (the top price before any trade), a sell counts nothing beyond it."""
        qptl, left, lots = sym.spec.quote_per_tick_lot, cmd.quote_qty, 0
        for maker in queue(sym, cmd.side, self._market_limit(sym, cmd.side)):
            if maker.account == cmd.account and cmd.stp != SelfTradeMode.NONE:
                if cmd.stp == SelfTradeMode.EXPIRE_MAKER:
                    continue
                break  # the end of what it can reach, as when the queue runs out
            for _ in range(maker.leaves):
                if maker.price * qptl > left:
                    return lots
                left -= maker.price * qptl
                lots += 1
        if cmd.side == BUY:
            limit = self._market_limit(sym, BUY) or sym.spec.max_price
            lots += left // (limit * qptl)
        return lots

    def _place(self, sym: RefSymbol, cmd: PlaceOrder) -> None:
        problem = self._place_problem(sym, cmd)
        qty = cmd.qty
        if problem is None and cmd.quote_qty:
            qty = self._quote_lots(sym, cmd)
            problem = self._qty_problem(sym, qty)
        if problem is not None:
            self.out.append(OrderRejected(*self._next(), sym.spec.symbol, cmd.account, cmd.client_oid, problem, ""))
            return
        order_id = self.in_seq  # an order's id is the in_seq of the command that created it
        shown_price = 0 if cmd.type == MARKET else cmd.price
        self.out.append(
            OrderAccepted(
                *self._next(),
                sym.spec.symbol,
                order_id,
                cmd.account,
                cmd.client_oid,
                cmd.side,
                cmd.type,
                cmd.tif,
                shown_price,
                qty,
                cmd.quote_qty,
                cmd.stp,
            )
        )
        limit = self._market_limit(sym, cmd.side) if cmd.type == MARKET else cmd.price
        self._enter(sym, order_id, cmd.account, cmd.side, cmd.type, cmd.tif, limit, qty, cmd.client_oid, cmd.stp)

    def _enter(
        self,
        sym: RefSymbol,
        order_id: int,
        account: int,
        side: Side,
        type: OrderType,
        tif: TimeInForce,
        limit: int | None,
        qty: int,
        client_oid: str,
        stp: SelfTradeMode,
    ) -> None:
        if tif == FOK and self._fillable_qty(sym, side, limit, account, stp) < qty:
            self._canceled(sym, order_id, account, client_oid, qty, CancelReason.FOK_NOT_FILLABLE)
            return
        leaves = qty
        stopped_by_self_trade = False
        while leaves > 0:
            makers = queue(sym, side, limit)  # sorted afresh on every step
            if not makers:
                break
            maker = makers[0]
            if maker.account == account and stp != SelfTradeMode.NONE:
                sym.prevented_id += 1  # the record of the stop comes first, then the cancels
                self.out.append(
                    MatchPrevented(
                        *self._next(), sym.spec.symbol, sym.prevented_id, account, order_id, maker.order_id,
                        maker.price, stp, 0 if stp == SelfTradeMode.EXPIRE_MAKER else leaves,
                        0 if stp == SelfTradeMode.EXPIRE_TAKER else maker.leaves,
                    )
                )  # fmt: skip
                if stp != SelfTradeMode.EXPIRE_TAKER:  # the resting order is expired
                    self._unrest(sym, maker)
                    self._canceled(
                        sym, maker.order_id, maker.account, maker.client_oid, maker.leaves, CancelReason.SELF_TRADE
                    )
                if stp != SelfTradeMode.EXPIRE_MAKER:  # the incoming order is expired
                    stopped_by_self_trade = True
                    break
                continue
            fill = min(maker.leaves, leaves)
            maker.leaves -= fill
            leaves -= fill
            sym.trade_id += 1
            sym.last_price = maker.price
            self.touched.append((maker.side, maker.price))
            self.out.append(
                TradeExecuted(
                    *self._next(),
                    sym.spec.symbol,
                    sym.trade_id,
                    maker.price,
                    fill,
                    side,
                    maker.order_id,
                    maker.account,
                    maker.leaves,
                    order_id,
                    account,
                    leaves,
                )
            )
            if maker.leaves == 0:
                sym.orders = [o for o in sym.orders if o is not maker]
        if leaves == 0:
            return
        if stopped_by_self_trade:
            self._canceled(sym, order_id, account, client_oid, leaves, CancelReason.SELF_TRADE)
        elif tif == GTC and type != MARKET:
            assert limit is not None
            sym.orders.append(RefOrder(order_id, account, side, limit, leaves, client_oid, type, stp))
            self.touched.append((side, limit))
        else:
            self._canceled(sym, order_id, account, client_oid, leaves, CancelReason.IOC_REMAINDER)

    def _fillable_qty(self, sym: RefSymbol, side: Side, limit: int | None, account: int, stp: SelfTradeMode) -> int:
        """What an order could fill right now: the queue up to its limit, stopping at its own account's order
        (or passing over it, when that order would be expired instead)."""
        total = 0
        for maker in queue(sym, side, limit):
            if maker.account == account and stp != SelfTradeMode.NONE:
                if stp == SelfTradeMode.EXPIRE_MAKER:
                    continue
                break
            total += maker.leaves
        return total

    def _cancel(self, sym: RefSymbol, cmd: CancelOrder) -> None:
        order = self._find(sym, cmd.account, cmd.order_id, cmd.client_oid)
        if order is None:
            self._cancel_rejected(
                sym.spec.symbol, cmd.account, cmd.order_id, cmd.client_oid, RejectReason.UNKNOWN_ORDER
            )
            return
        self._unrest(sym, order)
        self._canceled(sym, order.order_id, order.account, order.client_oid, order.leaves, CancelReason.USER)

    def _cancel_all(self, sym: RefSymbol, cmd: CancelAll) -> None:
        mine = sorted((o for o in sym.orders if o.account == cmd.account), key=lambda o: o.order_id)
        if not mine:
            self._cancel_rejected(sym.spec.symbol, cmd.account, 0, "", RejectReason.UNKNOWN_ORDER)
            return
        for order in mine:
            self._unrest(sym, order)
            self._canceled(sym, order.order_id, order.account, order.client_oid, order.leaves, CancelReason.USER)

    def _replace_problem(self, sym: RefSymbol, cmd: ReplaceOrder, order: RefOrder) -> RejectReason | None:
        new_client_oid = cmd.new_client_oid or order.client_oid
        if cmd.price == order.price and cmd.qty <= order.leaves:  # a reduction in place: only the quantity is checked
            problem = self._limit_problem(sym, 1, cmd.qty) if cmd.qty <= 0 or cmd.qty < sym.spec.min_qty else None
        else:
            problem = self._limit_problem(sym, cmd.price, cmd.qty)
        if problem is not None:
            return problem
        if len(cmd.new_client_oid) > MAX_CLIENT_OID:
            return RejectReason.INVALID_FIELD
        if new_client_oid != order.client_oid and sym.open_with_client_oid(cmd.account, new_client_oid) is not None:
            return RejectReason.DUPLICATE_CLIENT_ORDER_ID
        if cmd.price == order.price and cmd.qty == order.leaves and new_client_oid == order.client_oid:
            return RejectReason.REPLACE_NO_CHANGE
        if order.type == LIMIT_MAKER and self._would_take(sym, order.side, cmd.price):
            return RejectReason.POST_ONLY_WOULD_TAKE
        return None

    def _replace(self, sym: RefSymbol, cmd: ReplaceOrder) -> None:
        order = self._find(sym, cmd.account, cmd.order_id, cmd.client_oid)
        problem = RejectReason.UNKNOWN_ORDER if order is None else self._replace_problem(sym, cmd, order)
        if problem is not None:
            self._cancel_rejected(sym.spec.symbol, cmd.account, cmd.order_id, cmd.client_oid, problem)
            return
        assert order is not None
        new_client_oid = cmd.new_client_oid or order.client_oid
        if cmd.price == order.price and cmd.qty <= order.leaves:
            if cmd.qty != order.leaves:
                order.leaves = cmd.qty
                self.touched.append((order.side, order.price))
            order.client_oid = new_client_oid
            self.out.append(
                OrderReplaced(
                    *self._next(),
                    sym.spec.symbol,
                    order.order_id,
                    order.order_id,
                    order.account,
                    new_client_oid,
                    order.price,
                    order.leaves,
                    True,
                )
            )
            return
        self._unrest(sym, order)
        new_id = self.in_seq
        self.out.append(
            OrderReplaced(
                *self._next(),
                sym.spec.symbol,
                order.order_id,
                new_id,
                order.account,
                new_client_oid,
                cmd.price,
                cmd.qty,
                False,
            )
        )
        self._enter(
            sym, new_id, order.account, order.side, order.type, GTC, cmd.price, cmd.qty, new_client_oid, order.stp
        )
