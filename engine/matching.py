"""Matching for one symbol: validation, price-time matching, and the events each command causes.

Trade price
    Always the resting (maker) order's price: a taker that crosses several levels gets each level's price.

Order types
    LIMIT GTC rests what it does not fill. LIMIT IOC and MARKET cancel their unfilled rest (IOC_REMAINDER).
    FOK fills completely at once or is canceled (FOK_NOT_FILLABLE) without touching the book. LIMIT_MAKER
    (post-only) is rejected if it would take liquidity. MARKET orders match up to the price band around the last
    trade price (the whole book while there is no last trade).

Price band
    With a last trade price ``p`` and a band of ``b`` basis points, a limit price must lie in
    ``[ceil(p(1-b)), floor(p(1+b))]``; there is no band before the symbol's first trade.

Self-trade prevention
    An incoming order never trades with its own account's resting order. When it reaches one, its own mode
    decides (canceled with reason SELF_TRADE): EXPIRE_TAKER (the default) cancels the incoming order's remainder,
    EXPIRE_MAKER cancels the resting order and matching goes on, EXPIRE_BOTH cancels both. Fills before that
    point stand. A self-trade never prints. A cancel-replace that re-enters an order keeps its mode.

Event order within one command
    Order events and trades in the order they happened, then one BookDelta per price level the command changed,
    in the order the levels were first touched, each carrying the symbol's next ``update_id``.
"""

from __future__ import annotations

from engine.book import Book, BookSide, Order
from wire.commands import CancelAll, CancelOrder, PlaceOrder, ReplaceOrder
from wire.enums import CancelReason, OrderType, SelfTradeMode, Side, TimeInForce
from wire.events import (
    BookDelta,
    CancelRejected,
    Event,
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
USER, IOC_REMAINDER, SELF_TRADE = CancelReason.USER, CancelReason.IOC_REMAINDER, CancelReason.SELF_TRADE
EXPIRE_TAKER, EXPIRE_MAKER, EXPIRE_BOTH = (
    SelfTradeMode.EXPIRE_TAKER,
    SelfTradeMode.EXPIRE_MAKER,
    SelfTradeMode.EXPIRE_BOTH,
)
MAX_CLIENT_OID = 64  # longer ids are refused: the engine keeps them in memory for every open order

Refusal = tuple[RejectReason, str]


class Context:
    """Counters shared by all symbols of one engine, and the stamps of the command being applied."""

    __slots__ = ("in_seq", "next_order_id", "out_seq", "ts")

    def __init__(self) -> None:
        self.in_seq = 0
        self.out_seq = 0
        self.ts = 0
        self.next_order_id = 1


class Matcher:
    __slots__ = ("_band", "_band_last", "_dirty", "book", "ctx", "last_price", "spec", "trade_id", "update_id")

    def __init__(self, spec: SymbolSpec, ctx: Context) -> None:
        self.spec = spec
        self.book = Book(spec.symbol)
        self.ctx = ctx
        self.update_id = 0
        self.trade_id = 0
        self.last_price = 0  # 0: no trade yet
        # levels changed by the command being applied: key = price for bids, -price for asks (prices are > 0)
        self._dirty: dict[int, None] = {}
        # the price band around last_price, computed again only when last_price has changed
        self._band_last = 0
        self._band = (0, 0)

    # ---- validation -------------------------------------------------------------------------------------------

    def _check_qty(self, qty: int) -> Refusal | None:
        spec = self.spec
        if qty <= 0:
            return RejectReason.QTY_NOT_POSITIVE, f"qty={qty}"
        if qty < spec.min_qty:
            return RejectReason.QTY_BELOW_MIN, f"qty={qty} min_qty={spec.min_qty}"
        if qty > spec.max_qty:
            return RejectReason.QTY_ABOVE_MAX, f"qty={qty} max_qty={spec.max_qty}"
        return None

    def _check_limit(self, price: int, qty: int) -> Refusal | None:
        spec = self.spec
        if qty <= 0 or qty < spec.min_qty or qty > spec.max_qty:
            return self._check_qty(qty)
        if price <= 0:
            return RejectReason.PRICE_NOT_POSITIVE, f"price={price}"
        if price > spec.max_price:
            return RejectReason.PRICE_TOO_HIGH, f"price={price} max_price={spec.max_price}"
        last, band = self.last_price, spec.band_bps
        if last and band:
            if last != self._band_last:
                self._band_last = last
                self._band = -((-last * (10_000 - band)) // 10_000), last * (10_000 + band) // 10_000
            low, high = self._band
            if not low <= price <= high:
                return RejectReason.PRICE_OUT_OF_BAND, f"price={price} band=[{low},{high}] last={last}"
        if price * qty < spec.min_notional:
            return RejectReason.NOTIONAL_BELOW_MIN, f"notional={price * qty} min_notional={spec.min_notional}"
        return None

    def _check_place(self, cmd: PlaceOrder) -> Refusal | None:
        typ, tif = cmd.type, cmd.tif
        if (typ is MARKET and tif is GTC) or (typ is LIMIT_MAKER and tif is not GTC):
            return RejectReason.INVALID_ORDER_TYPE, f"type={typ.name} tif={tif.name}"
        if len(cmd.client_oid) > MAX_CLIENT_OID:
            return RejectReason.INVALID_FIELD, f"client_oid longer than {MAX_CLIENT_OID}"
        if typ is MARKET:
            spec, qty = self.spec, cmd.qty
            refusal = self._check_qty(qty)
            if refusal is not None:
                return refusal
            if self.last_price and self.last_price * qty < spec.min_notional:
                notional = self.last_price * qty
                return RejectReason.NOTIONAL_BELOW_MIN, f"notional={notional} min_notional={spec.min_notional}"
        else:
            refusal = self._check_limit(cmd.price, cmd.qty)
            if refusal is not None:
                return refusal
        if cmd.client_oid and (cmd.account, cmd.client_oid) in self.book.by_client_oid:
            return RejectReason.DUPLICATE_CLIENT_ORDER_ID, f"client_oid={cmd.client_oid!r} is open"
        if typ is LIMIT_MAKER and self._would_take(cmd.side, cmd.price):
            return RejectReason.POST_ONLY_WOULD_TAKE, f"price={cmd.price}"
        return None

    def _would_take(self, side: Side, price: int) -> bool:
        best = (self.book.asks if side is BUY else self.book.bids).best()
        if best is None:
            return False
        return best.price <= price if side is BUY else best.price >= price

    def _market_limit(self, side: Side) -> int:
        """The worst price a market order may reach: the band's edge, or the whole book before any trade."""
        last, band = self.last_price, self.spec.band_bps
        if side is BUY:
            return last * (10_000 + band) // 10_000 if last and band else self.spec.max_price
        return -((-last * (10_000 - band)) // 10_000) if last and band else 1

    # ---- commands ---------------------------------------------------------------------------------------------

    def place(self, cmd: PlaceOrder, out: list[Event]) -> None:
        ctx = self.ctx
        refusal = self._check_place(cmd)
        if refusal is not None:
            ctx.out_seq += 1
            out.append(
                OrderRejected(ctx.out_seq, ctx.in_seq, ctx.ts, self.spec.symbol, cmd.account, cmd.client_oid, *refusal)
            )
            return
        order_id = ctx.next_order_id
        ctx.next_order_id = order_id + 1
        side, typ, tif, qty = cmd.side, cmd.type, cmd.tif, cmd.qty
        price = self._market_limit(side) if typ is MARKET else cmd.price
        ctx.out_seq += 1
        out.append(
            OrderAccepted(
                ctx.out_seq,
                ctx.in_seq,
                ctx.ts,
                self.spec.symbol,
                order_id,
                cmd.account,
                cmd.client_oid,
                side,
                typ,
                tif,
                cmd.price if typ is not MARKET else 0,
                qty,
            )
        )
        self._enter(order_id, cmd.account, side, typ, tif, price, qty, cmd.client_oid, cmd.stp, out)

    def _enter(
        self,
        order_id: int,
        account: int,
        side: Side,
        typ: OrderType,
        tif: TimeInForce,
        price: int,
        qty: int,
        client_oid: str,
        stp: SelfTradeMode,
        out: list[Event],
    ) -> None:
        """Match an accepted order, then rest, cancel or expire what is left; emits the book deltas."""
        book = self.book
        opp = book.asks if side is BUY else book.bids
        if tif is FOK and not self._fillable(opp, price, qty, account, stp):
            self._canceled(order_id, account, client_oid, qty, CancelReason.FOK_NOT_FILLABLE, out)
            return
        keys = opp.keys
        if keys and keys[-1] >= price * opp.sign:  # it crosses the opposite touch
            leaves, self_trade = self._take(opp, side, price, qty, order_id, account, stp, out)
        elif not self._dirty:  # the common case, a passive order and no other level changed: one delta, directly
            if tif is GTC and typ is not MARKET:
                level = book.add(Order(order_id, account, side, price, qty, client_oid, typ, tif, stp))
                self._delta(side, price, level.total, out)
            else:
                self._canceled(order_id, account, client_oid, qty, IOC_REMAINDER, out)
            return
        else:  # passive, after a replace removed the old order's level (which was touched first)
            leaves, self_trade = qty, False
        if leaves:
            if self_trade:
                self._canceled(order_id, account, client_oid, leaves, SELF_TRADE, out)
            elif tif is GTC and typ is not MARKET:
                book.add(Order(order_id, account, side, price, leaves, client_oid, typ, tif, stp))
                self._dirty[price if side is BUY else -price] = None
            else:
                self._canceled(order_id, account, client_oid, leaves, IOC_REMAINDER, out)
        self._flush_deltas(out)

    def _fillable(self, opp: BookSide, price: int, qty: int, account: int, stp: SelfTradeMode) -> bool:
        """Could an order for ``qty`` up to ``price`` fill completely now? As matching would, it stops at the
        account's own resting order, or skips it when that order would be expired instead (EXPIRE_MAKER)."""
        sign, levels = opp.sign, opp.levels
        limit_key = price * sign
        check_owner = account in self.book.by_account
        available = 0
        for key in reversed(opp.keys):
            if key < limit_key:
                break
            level = levels[key * sign]
            if check_owner:
                for order in level:
                    if order.account == account:
                        if stp is EXPIRE_MAKER:
                            continue
                        return False
                    available += order.leaves
                    if available >= qty:
                        return True
            else:
                available += level.total
                if available >= qty:
                    return True
        return False

    def _take(
        self,
        opp: BookSide,
        side: Side,
        price: int,
        qty: int,
        order_id: int,
        account: int,
        stp: SelfTradeMode,
        out: list[Event],
    ) -> tuple[int, bool]:
        """Match against the opposite side up to ``price``. Returns (open quantity left, stopped by self-trade)."""
        ctx, book, dirty, symbol = self.ctx, self.book, self._dirty, self.spec.symbol
        sign, keys, levels = opp.sign, opp.keys, opp.levels
        limit_key = price * sign
        leaves = qty
        while leaves and keys and keys[-1] >= limit_key:
            key = keys[-1]
            level = levels[key * sign]
            level_price = level.price
            maker = level.head
            while maker is not None and leaves:
                if maker.account == account:
                    if stp is EXPIRE_TAKER:
                        return leaves, True
                    nxt = maker.next  # expire the resting order: canceled, never traded
                    dirty[key] = None
                    book.remove(maker)
                    self._canceled(maker.order_id, maker.account, maker.client_oid, maker.leaves, SELF_TRADE, out)
                    if stp is EXPIRE_BOTH:
                        return leaves, True
                    maker = nxt
                    continue
                dirty[key] = None  # sign * price, the dirty map's convention; only a level a fill changed
                fill = maker.leaves if maker.leaves < leaves else leaves
                leaves -= fill
                maker.leaves -= fill
                level.total -= fill
                self.trade_id += 1
                ctx.out_seq += 1
                out.append(
                    TradeExecuted(
                        ctx.out_seq,
                        ctx.in_seq,
                        ctx.ts,
                        symbol,
                        self.trade_id,
                        level_price,
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
                self.last_price = level_price
                nxt = maker.next
                if not maker.leaves:
                    book.remove(maker)
                maker = nxt
        return leaves, False

    def _canceled(
        self, order_id: int, account: int, client_oid: str, leaves: int, reason: CancelReason, out: list[Event]
    ) -> None:
        ctx = self.ctx
        ctx.out_seq += 1
        out.append(
            OrderCanceled(
                ctx.out_seq, ctx.in_seq, ctx.ts, self.spec.symbol, order_id, account, client_oid, leaves, reason
            )
        )

    def _cancel_rejected(
        self, account: int, order_id: int, client_oid: str, refusal: Refusal, out: list[Event]
    ) -> None:
        ctx = self.ctx
        ctx.out_seq += 1
        out.append(
            CancelRejected(ctx.out_seq, ctx.in_seq, ctx.ts, self.spec.symbol, account, order_id, client_oid, *refusal)
        )

    def _find(self, account: int, order_id: int, client_oid: str) -> Order | None:
        """An open order of ``account``: by id when given (and then the client id must match if given too)."""
        if order_id:
            order = self.book.orders.get(order_id)
            if order is None or order.account != account or (client_oid and order.client_oid != client_oid):
                return None
            return order
        if client_oid:
            return self.book.by_client_oid.get((account, client_oid))
        return None

    def cancel(self, cmd: CancelOrder, out: list[Event]) -> None:
        order = self._find(cmd.account, cmd.order_id, cmd.client_oid)
        if order is None:
            detail = f"order_id={cmd.order_id} client_oid={cmd.client_oid!r}"
            self._cancel_rejected(cmd.account, cmd.order_id, cmd.client_oid, (RejectReason.UNKNOWN_ORDER, detail), out)
            return
        level = self.book.remove(order)
        self._canceled(order.order_id, order.account, order.client_oid, order.leaves, USER, out)
        self._delta(order.side, order.price, level.total, out)  # one level changed: no need for the dirty map

    def _delta(self, side: Side, price: int, total: int, out: list[Event]) -> None:
        ctx = self.ctx
        ctx.out_seq += 1
        self.update_id += 1
        out.append(BookDelta(ctx.out_seq, ctx.in_seq, ctx.ts, self.spec.symbol, self.update_id, side, price, total))

    def cancel_all(self, cmd: CancelAll, out: list[Event]) -> None:
        mine = self.book.by_account.get(cmd.account)
        if not mine:
            self._cancel_rejected(cmd.account, 0, "", (RejectReason.UNKNOWN_ORDER, "no open orders"), out)
            return
        for order in list(mine.values()):  # ascending order id: the order they were accepted in
            self._remove(order, USER, out)
        self._flush_deltas(out)

    def _remove(self, order: Order, reason: CancelReason, out: list[Event]) -> None:
        self.book.remove(order)
        self._dirty[order.price if order.side is BUY else -order.price] = None
        self._canceled(order.order_id, order.account, order.client_oid, order.leaves, reason, out)

    def replace(self, cmd: ReplaceOrder, out: list[Event]) -> None:
        ctx, book = self.ctx, self.book
        order = self._find(cmd.account, cmd.order_id, cmd.client_oid)
        refusal: Refusal | None = None
        if order is None:
            refusal = RejectReason.UNKNOWN_ORDER, f"order_id={cmd.order_id} client_oid={cmd.client_oid!r}"
        else:
            new_coid = cmd.new_client_oid or order.client_oid
            same_price = cmd.price == order.price
            if same_price and cmd.qty <= order.leaves:
                # reduced in place: the price passed its checks when the order entered and a moved band or the
                # smaller notional must not trap it (it could only be canceled); only the quantity is new
                refusal = self._check_qty(cmd.qty)
            else:
                refusal = self._check_limit(cmd.price, cmd.qty)
            if refusal is None and len(cmd.new_client_oid) > MAX_CLIENT_OID:
                refusal = RejectReason.INVALID_FIELD, f"client_oid longer than {MAX_CLIENT_OID}"
            if refusal is None and new_coid != order.client_oid and (cmd.account, new_coid) in book.by_client_oid:
                refusal = RejectReason.DUPLICATE_CLIENT_ORDER_ID, f"client_oid={new_coid!r} is open"
            if refusal is None and same_price and cmd.qty == order.leaves and new_coid == order.client_oid:
                refusal = RejectReason.REPLACE_NO_CHANGE, "same price, quantity and client order id"
            if refusal is None and order.type is LIMIT_MAKER and self._would_take(order.side, cmd.price):
                refusal = RejectReason.POST_ONLY_WOULD_TAKE, f"price={cmd.price}"
        if refusal is not None:
            self._cancel_rejected(cmd.account, cmd.order_id, cmd.client_oid, refusal, out)
            return
        assert order is not None
        if same_price and cmd.qty <= order.leaves:
            # lowering (or keeping) the quantity at the same price keeps the order's queue position
            if cmd.qty != order.leaves:
                book.reduce(order, cmd.qty)
                self._dirty[order.price if order.side is BUY else -order.price] = None
            if new_coid != order.client_oid:
                book.rename(order, new_coid)
            ctx.out_seq += 1
            out.append(
                OrderReplaced(
                    ctx.out_seq,
                    ctx.in_seq,
                    ctx.ts,
                    self.spec.symbol,
                    order.order_id,
                    order.order_id,
                    order.account,
                    new_coid,
                    order.price,
                    order.leaves,
                    True,
                )
            )
            self._flush_deltas(out)
            return
        # a new price or a larger quantity: the old order leaves the book, a new one enters at the back
        book.remove(order)
        self._dirty[order.price if order.side is BUY else -order.price] = None
        new_id = ctx.next_order_id
        ctx.next_order_id = new_id + 1
        ctx.out_seq += 1
        out.append(
            OrderReplaced(
                ctx.out_seq,
                ctx.in_seq,
                ctx.ts,
                self.spec.symbol,
                order.order_id,
                new_id,
                order.account,
                new_coid,
                cmd.price,
                cmd.qty,
                False,
            )
        )
        self._enter(new_id, order.account, order.side, order.type, GTC, cmd.price, cmd.qty, new_coid, order.stp, out)

    def _flush_deltas(self, out: list[Event]) -> None:
        dirty = self._dirty
        if not dirty:
            return
        ctx, book = self.ctx, self.book
        for key in dirty:
            if key > 0:
                level = book.bids.levels.get(key)
                side, price = BUY, key
            else:
                price = -key
                level = book.asks.levels.get(price)
                side = SELL
            self.update_id = update_id = self.update_id + 1
            ctx.out_seq = out_seq = ctx.out_seq + 1
            out.append(
                BookDelta(
                    out_seq, ctx.in_seq, ctx.ts, self.spec.symbol, update_id, side, price,
                    level.total if level is not None else 0,
                )
            )  # fmt: skip
        dirty.clear()
