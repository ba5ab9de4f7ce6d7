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

Order ids
    An accepted order's id is the in_seq of the command that created it (a PlaceOrder, or a ReplaceOrder that
    re-enters the order under a new id). One command creates at most one order and in_seq is gap-free and
    increasing, so ids are unique and grow with acceptance time, which is the time priority within a level (the
    snapshot relies on it); they are not contiguous. The sequencer acknowledges a command with its in_seq, so a
    gateway knows an order's id as soon as the order is journaled, before the engine has applied it.

Self-trade prevention
    An incoming order does not trade with its own account's resting order unless its mode is NONE (Binance's: it
    trades with its own orders like anyone's, both sides paying their fees). When it reaches one, its own mode
    decides (canceled with reason SELF_TRADE): EXPIRE_TAKER (the default) cancels the incoming order's remainder,
    EXPIRE_MAKER cancels the resting order and matching goes on, EXPIRE_BOTH cancels both. Fills before that
    point stand. A prevented self-trade never prints. A cancel-replace that re-enters an order keeps its mode.
    Each stop is recorded first as a MatchPrevented (Binance's prevented match: both orders, the price, what each
    lost), then the cancels it causes follow.

Market order by quote amount
    A MARKET order with ``quote_qty`` is converted on arrival into lots, then matched as a market order of that
    quantity. A BUY gets the lots that amount buys: walking the asks the order can reach (as matching will), then,
    if the book runs out, what the rest buys at the market limit price. A SELL gets the largest number of lots
    whose proceeds (price x qty x quote_per_tick_lot, before fees) do not exceed the amount, walking the bids the
    same way; the bids are sold best first, so proceeds grow with every lot and the walk stops at the first lot
    that would pass the amount. A sell counts no lots beyond the bids: they could not be sold, and at the market
    limit price (the band's low edge, one tick before any trade) the rest of the amount would ask for absurdly many
    lots and lock base the order can never sell. What either cannot fill is canceled like any market order's rest.

Risk (when the engine runs with accounts, which it always does outside matching-only tests and benchmarks)
    An order locks what it could spend before it matches, and is rejected (INSUFFICIENT_BALANCE) if the account's
    free balance cannot cover it:

    - a sell locks ``qty * base_per_lot`` base units;
    - a limit buy (any time in force, post-only too) locks ``price * qty * quote_per_tick_lot`` quote units;
    - a market buy by quantity locks what it could spend at most, ``qty`` at its limit price (the band's edge),
      or, when the account has less than that free, exactly what it would spend now: the cost of walking the
      asks it can reach (within the band, stopping at or skipping its own orders as self-trade prevention will);
      either way it spends only what it fills and the rest is released when it ends, with the command;
    - a market buy by quote amount locks that amount; a market sell by quote amount is a sell of the lots it was
      converted into, and locks their base like any sell.

    Fees are charged in the asset each side receives, so they never need a lock: the lock of a buy is the
    quote it could pay and nothing more. A fill moves ``qty * base_per_lot`` base from seller to buyer and
    ``price * qty * quote_per_tick_lot`` quote from buyer to seller, less each side's fee, which goes to the fee
    account; a buy that fills below its limit gets the difference back from its lock at once. Whatever an order
    has not spent when it leaves (cancel, IOC or market remainder, FOK, self-trade expiry, replace) is released.
    So, at every command boundary, an account's ``locked`` is exactly ``leaves * price * quote_per_tick_lot``
    summed over its resting buys plus ``leaves * base_per_lot`` over its resting sells.

Fees
    ``fee = ceil(received * bps / 10 000)``: rounded up, in the venue's favour, never more than received (rates
    are below 10 000 bps). The maker pays the symbol's maker rate, the taker its taker rate, unless the account
    has its own rates (SetFeeRates).

Event order within one command
    Order events and trades in the order they happened, then one BookDelta per price level the command changed,
    in the order the levels were first touched, each carrying the symbol's next ``update_id``, then one
    BalanceChanged per balance the command changed (see engine.accounts): the incoming order's first (the one it
    locked, then, if it traded, the one it received into), then the others in the order they were first touched.
    The fee account is the exception: its balances move with every trade by exactly the trade's ``maker_fee`` and
    ``taker_fee``, and a BalanceChanged for it would add two events to every trading command for a balance no
    trader follows, so none is emitted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from engine.accounts import FEE_ACCOUNT, Accounts, Balance
from engine.book import Book, BookSide, Order
from engine.context import Context
from wire.commands import CancelAll, CancelOrder, PlaceOrder, ReplaceOrder
from wire.enums import BalanceCause, CancelReason, OrderType, SelfTradeMode, Side, TimeInForce
from wire.events import (
    BalanceChanged,
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

# Module constants, Final: compiled (mypyc), a Final global is a C static rather than a module-dict lookup
BUY: Final = Side.BUY
SELL: Final = Side.SELL
GTC: Final = TimeInForce.GTC
IOC: Final = TimeInForce.IOC
FOK: Final = TimeInForce.FOK
LIMIT: Final = OrderType.LIMIT
MARKET: Final = OrderType.MARKET
LIMIT_MAKER: Final = OrderType.LIMIT_MAKER
USER: Final = CancelReason.USER
IOC_REMAINDER: Final = CancelReason.IOC_REMAINDER
SELF_TRADE: Final = CancelReason.SELF_TRADE
EXPIRE_TAKER: Final = SelfTradeMode.EXPIRE_TAKER
EXPIRE_MAKER: Final = SelfTradeMode.EXPIRE_MAKER
NO_PREVENTION: Final = SelfTradeMode.NONE
EXPIRE_BOTH: Final = SelfTradeMode.EXPIRE_BOTH
ORDER: Final = BalanceCause.ORDER
TRADE: Final = BalanceCause.TRADE
MAX_CLIENT_OID: Final = 64  # longer ids are refused: the engine keeps them in memory for every open order

Refusal = tuple[RejectReason, str]


class Matcher:
    __slots__ = (
        "_band_high",
        "_band_low",
        "_bpl",
        "_dirty",
        "_fee_base",
        "_fee_quote",
        "_qptl",
        "_t_gain",
        "_t_hold",
        "_t_lock",
        "_t_need",
        "_t_rate",
        "_wallets",
        "accounts",
        "book",
        "ctx",
        "last_price",
        "prevented_id",
        "risk",
        "spec",
        "trade_id",
        "update_id",
    )

    def __init__(self, spec: SymbolSpec, ctx: Context, accounts: Accounts, risk: bool = True) -> None:
        self.spec = spec
        self.book = Book(spec.symbol)
        self.ctx = ctx
        self.accounts = accounts
        self.risk = risk  # False: matching only (no accounts, locks or fees), for matching tests and benchmarks
        self._bpl = spec.base_per_lot
        self._qptl = spec.quote_per_tick_lot
        if risk:
            self._fee_base = accounts.get(FEE_ACCOUNT, spec.base)
            self._fee_quote = accounts.get(FEE_ACCOUNT, spec.quote)
        # account -> its (base, quote) balances: one lookup per order instead of three
        self._wallets: dict[int, tuple[Balance, Balance]] = {}
        # the incoming (taker) order's money while it is applied: the balance it locked and spends from, the one
        # it receives into, its lock per lot (0: a market buy, which spends from a budget), what is still locked
        # for it, and what it locked at first
        self._t_hold: Balance | None = None
        self._t_gain: Balance | None = None
        self._t_rate = 0
        self._t_lock = 0
        self._t_need = 0
        self.update_id = 0
        self.trade_id = 0
        self.prevented_id = 0  # the last MatchPrevented's match_id
        # levels changed by the command being applied: key = price for bids, -price for asks (prices are > 0)
        self._dirty: dict[int, None] = {}
        self.last_price = 0  # 0: no trade yet
        # the price band's edges around last_price (the whole price range while there is no band): computed when
        # last_price changes, read by every limit order's check and every market order
        self._band_low = 1
        self._band_high = spec.max_price

    def set_last_price(self, price: int) -> None:
        self.last_price = price
        band = self.spec.band_bps
        if price and band:
            self._band_low = -((-price * (10_000 - band)) // 10_000)
            self._band_high = price * (10_000 + band) // 10_000
        else:
            self._band_low, self._band_high = 1, self.spec.max_price

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
        # the common case in one expression (min_qty >= 1 and the band's low edge >= 1 cover the signs)
        if (
            spec.min_qty <= qty <= spec.max_qty
            and self._band_low <= price <= self._band_high
            and price <= spec.max_price
            and price * qty >= spec.min_notional
        ):
            return None
        # refused: the reason, in the order of precedence
        if qty <= 0 or qty < spec.min_qty or qty > spec.max_qty:
            return self._check_qty(qty)
        if price <= 0:
            return RejectReason.PRICE_NOT_POSITIVE, f"price={price}"
        if price > spec.max_price:
            return RejectReason.PRICE_TOO_HIGH, f"price={price} max_price={spec.max_price}"
        low, high = self._band_low, self._band_high
        if not low <= price <= high:
            return RejectReason.PRICE_OUT_OF_BAND, f"price={price} band=[{low},{high}] last={self.last_price}"
        return RejectReason.NOTIONAL_BELOW_MIN, f"notional={price * qty} min_notional={spec.min_notional}"

    def _check_place(self, cmd: PlaceOrder) -> Refusal | None:
        typ, tif = cmd.type, cmd.tif
        if (typ is MARKET and tif is GTC) or (typ is LIMIT_MAKER and tif is not GTC):
            return RejectReason.INVALID_ORDER_TYPE, f"type={typ.name} tif={tif.name}"
        if len(cmd.client_oid) > MAX_CLIENT_OID:
            return RejectReason.INVALID_FIELD, f"client_oid longer than {MAX_CLIENT_OID}"
        if cmd.quote_qty:
            spec = self.spec
            if typ is not MARKET:
                return RejectReason.INVALID_FIELD, "quote_qty is for market orders only"
            if cmd.qty:
                return RejectReason.INVALID_FIELD, "give qty or quote_qty, not both"
            if cmd.quote_qty < 0:
                return RejectReason.QTY_NOT_POSITIVE, f"quote_qty={cmd.quote_qty}"
            if cmd.quote_qty < spec.min_notional * self._qptl:
                return (
                    RejectReason.NOTIONAL_BELOW_MIN,
                    f"quote_qty={cmd.quote_qty} min_notional={spec.min_notional * self._qptl}",
                )
        elif typ is MARKET:
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

    def _reachable(self, side: Side, price: int, account: int, stp: SelfTradeMode) -> Iterator[tuple[int, int]]:
        """The (price, open quantity) an incoming ``side`` order of ``account`` limited to ``price`` would meet,
        best first, as matching would: it stops at the account's own resting order, or skips it when that order
        would be expired instead (EXPIRE_MAKER). Whole levels when the account has no resting order here."""
        opp = self.book.asks if side is BUY else self.book.bids
        sign, levels = opp.sign, opp.levels
        limit_key = price * sign
        check_owner = stp is not NO_PREVENTION and account in self.book.by_account
        for key in reversed(opp.keys):
            if key < limit_key:
                return
            level = levels[key * sign]
            if not check_owner:
                yield level.price, level.total
                continue
            for order in level:
                if order.account == account:
                    if stp is EXPIRE_MAKER:
                        continue
                    return
                yield level.price, order.leaves

    def _quote_to_lots(self, cmd: PlaceOrder) -> tuple[int, Refusal | None]:
        """The lots a market order's ``quote_qty`` buys or sells now (see the module's notes), or why it cannot be
        placed."""
        side, qptl, budget, lots = cmd.side, self._qptl, cmd.quote_qty, 0
        limit = self._market_limit(side)
        # the same walk for both sides: best price first, so each further lot costs (buy) or yields (sell) at least
        # as much as the last one had left, and the first lot that does not fit ends it
        for price, available in self._reachable(side, limit, cmd.account, cmd.stp):
            lot_value = price * qptl
            take = budget // lot_value
            if take < available:
                lots += take
                break
            lots += available
            budget -= available * lot_value
        else:
            if side is BUY:  # the reachable book ran out: the rest buys what it would at the market limit price
                lots += budget // (limit * qptl)
        refusal = self._check_qty(lots)
        if refusal is not None:
            verb = "buys" if side is BUY else "sells"
            return lots, (refusal[0], f"quote_qty={cmd.quote_qty} {verb} {refusal[1]}")
        return lots, None

    def _market_buy_cost(self, account: int, stp: SelfTradeMode, qty: int) -> int:
        """What a market buy of ``qty`` lots would spend now: the lock it needs (never more than that)."""
        qptl, cost = self._qptl, 0
        for price, available in self._reachable(BUY, self._market_limit(BUY), account, stp):
            if available >= qty:
                return cost + qty * price * qptl
            cost += available * price * qptl
            qty -= available
        return cost

    def _lock(self, cmd: PlaceOrder, qty: int) -> Refusal | None:
        """Lock what an incoming order of ``qty`` lots could spend and set up the taker's money (``_t_*``) for
        matching; or refuse it (unknown account, insufficient balance) without changing anything."""
        account, side, typ = cmd.account, cmd.side, cmd.type
        wallet = self._wallets.get(account)
        if wallet is None:
            accounts = self.accounts
            if account not in accounts.balances or account == FEE_ACCOUNT:
                return RejectReason.UNKNOWN_ACCOUNT, f"account={account}"
            # an empty balance is no state (snapshots leave it out), so creating both now changes nothing
            wallet = (accounts.get(account, self.spec.base), accounts.get(account, self.spec.quote))
            self._wallets[account] = wallet
        if side is SELL:
            hold, gain = wallet
            rate = self._bpl
            need = qty * rate
        elif typ is MARKET:
            gain, hold = wallet
            rate = 0
            need = cmd.quote_qty
            if not need:
                # the most it can spend is qty at its limit price (the band's edge); when the account does not
                # have that much free, walk the book for the exact cost, so that a covered order is never refused
                need = qty * self._band_high * self._qptl
                if need > hold.free:
                    need = self._market_buy_cost(account, cmd.stp, qty)
        else:
            gain, hold = wallet
            rate = cmd.price * self._qptl
            need = qty * rate
        if need > hold.free:
            return RejectReason.INSUFFICIENT_BALANCE, f"needs {need} {hold.asset}, free {hold.free}"
        hold.free -= need
        hold.locked += need
        # the taker's lock is not in the dirty map: _settle emits its balance first, from these
        self._t_hold, self._t_gain, self._t_rate, self._t_lock, self._t_need = hold, gain, rate, need, need
        return None

    def _relock(self, order: Order, price: int, qty: int) -> None:
        """Lock for the new order a replace enters (``_check_relock`` made sure it fits), as ``_lock`` does."""
        hold, gain = order.hold, order.gain
        assert hold is not None and gain is not None
        rate = price * self._qptl if order.side is BUY else self._bpl
        need = qty * rate
        hold.free -= need
        hold.locked += need
        self.accounts.dirty.pop(hold, None)  # the old order's release: _settle emits this balance first
        self._t_hold, self._t_gain, self._t_rate, self._t_lock, self._t_need = hold, gain, rate, need, need

    def _settle(self, rests: bool, out: list[Event]) -> None:
        """After an incoming order matched: release what it still locks unless it rests (a resting order's lock
        is exactly leaves x rate, by construction), then emit the command's balance changes: the order's own
        first, then the dirty map's."""
        hold: Balance = self._t_hold  # type: ignore[assignment]
        lock = self._t_lock
        if lock:
            if not rests:
                hold.locked -= lock
                hold.free += lock
            self._t_lock = 0
        dirty = self.accounts.dirty
        ctx = self.ctx
        in_seq, ts, out_seq = ctx.in_seq, ctx.ts, ctx.out_seq
        need = self._t_need
        if need:  # else it locked nothing (a market buy that found nothing to buy) and nothing moved
            if lock == need:  # nothing filled
                out_seq += 1
                out.append(BalanceChanged(out_seq, in_seq, ts, hold.account, hold.asset, hold.free, hold.locked, ORDER))
            else:  # it traded: its two balances, then the resting orders'
                gain: Balance = self._t_gain  # type: ignore[assignment]
                if dirty:
                    dirty.pop(gain, None)  # an own resting order expired by self-trade prevention may have touched it
                out_seq += 2
                out.append(
                    BalanceChanged(out_seq - 1, in_seq, ts, hold.account, hold.asset, hold.free, hold.locked, TRADE)
                )
                out.append(BalanceChanged(out_seq, in_seq, ts, gain.account, gain.asset, gain.free, gain.locked, TRADE))
        ctx.out_seq = out_seq
        if dirty:
            self.accounts.flush(out)  # the resting orders' balances

    def _release(self, order: Order, qty: int) -> None:
        """Give back what ``qty`` lots of a resting order lock (it leaves the book, or is reduced by ``qty``)."""
        hold = order.hold
        if hold is None:  # risk off
            return
        amount = qty * (order.price * self._qptl if order.side is BUY else self._bpl)
        hold.locked -= amount
        hold.free += amount
        dirty = self.accounts.dirty
        if hold not in dirty:
            dirty[hold] = ORDER

    def _would_take(self, side: Side, price: int) -> bool:
        best = (self.book.asks if side is BUY else self.book.bids).best()
        if best is None:
            return False
        return best.price <= price if side is BUY else best.price >= price

    def _market_limit(self, side: Side) -> int:
        """The worst price a market order may reach: the band's edge, or the whole book before any trade."""
        return self._band_high if side is BUY else self._band_low

    # ---- commands ---------------------------------------------------------------------------------------------

    def place(self, cmd: PlaceOrder, out: list[Event]) -> None:
        ctx, risk = self.ctx, self.risk
        side, typ, tif, qty = cmd.side, cmd.type, cmd.tif, cmd.qty
        refusal = self._check_place(cmd)
        if refusal is None:
            if cmd.quote_qty:
                qty, refusal = self._quote_to_lots(cmd)
            if risk and refusal is None:
                refusal = self._lock(cmd, qty)
        if refusal is not None:
            ctx.out_seq += 1
            out.append(
                OrderRejected(ctx.out_seq, ctx.in_seq, ctx.ts, self.spec.symbol, cmd.account, cmd.client_oid, *refusal)
            )
            return
        order_id = ctx.in_seq  # see "Order ids" in the module's notes
        in_seq, ts, symbol = ctx.in_seq, ctx.ts, self.spec.symbol
        out_seq = ctx.out_seq + 1
        if typ is MARKET:
            price = self._market_limit(side)
            out.append(OrderAccepted(out_seq, in_seq, ts, symbol, order_id, cmd.account, cmd.client_oid, side, typ,
                                     tif, 0, qty, cmd.quote_qty, cmd.stp))  # fmt: skip
        else:
            price = cmd.price
            out.append(OrderAccepted(out_seq, in_seq, ts, symbol, order_id, cmd.account, cmd.client_oid, side, typ,
                                     tif, price, qty, 0, cmd.stp))  # fmt: skip
            book = self.book
            opp = book.asks if side is BUY else book.bids
            keys = opp.keys
            if tif is GTC and (not keys or keys[-1] < price * opp.sign):
                # half of all commands: a passive GTC order rests with one BookDelta (and with risk on, one
                # BalanceChanged for its lock), built here without the general path's calls (_enter's fast path)
                hold = self._t_hold
                level = book.add(Order(order_id, cmd.account, side, price, qty, cmd.client_oid, typ, tif, cmd.stp,
                                       hold, self._t_gain))  # fmt: skip
                self.update_id = update_id = self.update_id + 1
                out_seq += 1
                out.append(BookDelta(out_seq, in_seq, ts, symbol, update_id, side, price, level.total))
                if risk:
                    assert hold is not None
                    self._t_lock = 0
                    out_seq += 1
                    out.append(
                        BalanceChanged(out_seq, in_seq, ts, hold.account, hold.asset, hold.free, hold.locked, ORDER)
                    )
                ctx.out_seq = out_seq
                return
        ctx.out_seq = out_seq
        rests = self._enter(order_id, cmd.account, side, typ, tif, price, qty, cmd.client_oid, cmd.stp, out)
        if risk:
            self._settle(rests, out)

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
    ) -> bool:
        """Match an accepted order, then rest, cancel or expire what is left; emits the book deltas. Returns
        whether the order rests."""
        book = self.book
        opp = book.asks if side is BUY else book.bids
        if tif is FOK and not self._fillable(side, price, qty, account, stp):
            self._canceled(order_id, account, client_oid, qty, CancelReason.FOK_NOT_FILLABLE, out)
            return False
        keys = opp.keys
        if keys and keys[-1] >= price * opp.sign:  # it crosses the opposite touch
            leaves, self_trade = self._take(opp, side, price, qty, order_id, account, stp, out)
        elif not self._dirty:  # the common case, a passive order and no other level changed: one delta, directly
            if tif is GTC and typ is not MARKET:
                level = book.add(
                    Order(order_id, account, side, price, qty, client_oid, typ, tif, stp, self._t_hold, self._t_gain)
                )
                self._delta(side, price, level.total, out)
                return True
            self._canceled(order_id, account, client_oid, qty, IOC_REMAINDER, out)
            return False
        else:  # passive, after a replace removed the old order's level (which was touched first)
            leaves, self_trade = qty, False
        rests = False
        if leaves:
            if self_trade:
                self._canceled(order_id, account, client_oid, leaves, SELF_TRADE, out)
            elif tif is GTC and typ is not MARKET:
                book.add(
                    Order(order_id, account, side, price, leaves, client_oid, typ, tif, stp, self._t_hold, self._t_gain)
                )
                self._dirty[price if side is BUY else -price] = None
                rests = True
            else:
                self._canceled(order_id, account, client_oid, leaves, IOC_REMAINDER, out)
        self._flush_deltas(out)
        return rests

    def _fillable(self, side: Side, price: int, qty: int, account: int, stp: SelfTradeMode) -> bool:
        """Could an order for ``qty`` up to ``price`` fill completely now?"""
        for _, available in self._reachable(side, price, account, stp):
            qty -= available
            if qty <= 0:
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
        """Match against the opposite side up to ``price``. Returns (open quantity left, stopped by self-trade).
        With risk on, each fill also settles both accounts and the fees (see the module's notes)."""
        ctx, book, dirty, symbol = self.ctx, self.book, self._dirty, self.spec.symbol
        sign, keys, levels = opp.sign, opp.keys, opp.levels
        limit_key = price * sign
        leaves = qty
        risk = self.risk
        if risk:
            bpl, qptl, moved = self._bpl, self._qptl, self.accounts.dirty
            overrides = self.accounts.fee_overrides
            maker_bps = self.spec.maker_fee_bps
            t_rate, t_lock = self._t_rate, self._t_lock
            own = overrides.get(account) if overrides else None
            t_bps = self.spec.taker_fee_bps if own is None else own[1]
            budget = side is BUY and not t_rate  # a market buy: each fill must fit what is left of its lock
            # the taker's side of every fill is summed here and applied once after the loop (its balances are
            # emitted first by _settle anyway): what left its lock, what it spent, what it got net, the fees
            t_unlock = t_spent = t_got = fee_b = fee_q = 0
        stopped = False
        trade_id = self.trade_id
        last_price = self.last_price
        while leaves and keys and keys[-1] >= limit_key:
            key = keys[-1]
            level = levels[key * sign]
            level_price = level.price
            maker = level.head
            while maker is not None and leaves:
                if maker.account == account and stp is not NO_PREVENTION:
                    if stp is EXPIRE_TAKER:
                        self._prevented(order_id, maker, level_price, stp, leaves, 0, out)
                        stopped = True
                        break
                    self._prevented(order_id, maker, level_price, stp, leaves if stp is EXPIRE_BOTH else 0,
                                    maker.leaves, out)  # fmt: skip
                    nxt = maker.next  # expire the resting order: canceled, never traded
                    dirty[key] = None
                    book.remove(maker)
                    self._release(maker, maker.leaves)
                    self._canceled(maker.order_id, maker.account, maker.client_oid, maker.leaves, SELF_TRADE, out)
                    if stp is EXPIRE_BOTH:
                        stopped = True
                        break
                    maker = nxt
                    continue
                fill = maker.leaves if maker.leaves < leaves else leaves
                maker_fee = taker_fee = 0
                if risk:
                    quote = fill * level_price * qptl
                    if budget and quote > t_lock:
                        # only a quote-amount order gets here: it buys what is left of its money, and then what is
                        # left buys no lot at this or any later price, so the next turn stops
                        fill = t_lock // (level_price * qptl)
                        if not fill:
                            break
                        quote = fill * level_price * qptl
                    base = fill * bpl
                    own = overrides.get(maker.account) if overrides else None
                    m_bps = maker_bps if own is None else own[0]
                    # a resting order has both balances when risk is on (typed optional for risk off)
                    m_hold: Balance = maker.hold  # type: ignore[assignment]
                    m_gain: Balance = maker.gain  # type: ignore[assignment]
                    if side is BUY:  # the taker pays quote from its lock and receives base; the maker the reverse
                        taker_fee = -(-base * t_bps // 10_000)  # ceil: rounded in the venue's favour
                        maker_fee = -(-quote * m_bps // 10_000)
                        unlock = fill * t_rate if t_rate else quote  # a limit buy below its limit: gets the rest back
                        t_lock -= unlock
                        t_unlock += unlock
                        t_spent += quote
                        t_got += base - taker_fee
                        fee_b += taker_fee
                        fee_q += maker_fee
                        m_hold.locked -= base
                        m_gain.free += quote - maker_fee
                        moved[m_hold] = moved[m_gain] = TRADE
                    else:  # the taker sells base from its lock; the resting buy locked quote at this very price
                        taker_fee = -(-quote * t_bps // 10_000)
                        maker_fee = -(-base * m_bps // 10_000)
                        t_lock -= base
                        t_unlock += base
                        t_spent += base
                        t_got += quote - taker_fee
                        fee_q += taker_fee
                        fee_b += maker_fee
                        m_hold.locked -= quote
                        m_gain.free += base - maker_fee
                        moved[m_hold] = moved[m_gain] = TRADE
                dirty[key] = None  # sign * price, the dirty map's convention; only a level a fill changed
                leaves -= fill
                maker.leaves -= fill
                level.total -= fill
                trade_id += 1
                ctx.out_seq += 1
                out.append(
                    TradeExecuted(
                        ctx.out_seq,
                        ctx.in_seq,
                        ctx.ts,
                        symbol,
                        trade_id,
                        level_price,
                        fill,
                        side,
                        maker.order_id,
                        maker.account,
                        maker.leaves,
                        order_id,
                        account,
                        leaves,
                        maker_fee,
                        taker_fee,
                    )
                )
                last_price = level_price
                nxt = maker.next
                if not maker.leaves:
                    book.remove(maker)
                maker = nxt
            else:
                continue
            break  # self-trade stop, or a market buy's money ran out
        if trade_id != self.trade_id:
            self.trade_id = trade_id
            if last_price != self.last_price:
                self.set_last_price(last_price)
        if risk and t_unlock:
            t_hold: Balance = self._t_hold  # type: ignore[assignment]  # set by _lock whenever risk is on
            t_gain: Balance = self._t_gain  # type: ignore[assignment]
            t_hold.locked -= t_unlock
            t_hold.free += t_unlock - t_spent
            t_gain.free += t_got
            self._fee_base.free += fee_b
            self._fee_quote.free += fee_q
            self._t_lock = t_lock
        return leaves, stopped

    def _prevented(self, taker_id: int, maker: Order, price: int, mode: SelfTradeMode, taker_qty: int,
                   maker_qty: int, out: list[Event]) -> None:  # fmt: skip
        """The record of a self-trade stopped at ``price`` (Binance's prevented match), before the cancels."""
        ctx = self.ctx
        ctx.out_seq += 1
        self.prevented_id += 1
        out.append(
            MatchPrevented(ctx.out_seq, ctx.in_seq, ctx.ts, self.spec.symbol, self.prevented_id, maker.account,
                           taker_id, maker.order_id, price, mode, taker_qty, maker_qty)
        )  # fmt: skip

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
        # a third of all commands: the three events are built here directly (no helper calls, no dirty maps:
        # exactly one level and at most one balance change)
        level = self.book.remove(order)
        ctx = self.ctx
        in_seq, ts, symbol, leaves = ctx.in_seq, ctx.ts, self.spec.symbol, order.leaves
        out_seq = ctx.out_seq + 1
        out.append(OrderCanceled(out_seq, in_seq, ts, symbol, order.order_id, order.account, order.client_oid, leaves,
                                 USER))  # fmt: skip
        self.update_id = update_id = self.update_id + 1
        out_seq += 1
        out.append(BookDelta(out_seq, in_seq, ts, symbol, update_id, order.side, order.price, level.total))
        hold = order.hold
        if hold is not None:  # risk on: release its lock
            amount = leaves * (order.price * self._qptl if order.side is BUY else self._bpl)
            hold.locked -= amount
            hold.free += amount
            out_seq += 1
            out.append(BalanceChanged(out_seq, in_seq, ts, hold.account, hold.asset, hold.free, hold.locked, ORDER))
        ctx.out_seq = out_seq

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
            self.book.remove(order)
            self._release(order, order.leaves)
            self._dirty[order.price if order.side is BUY else -order.price] = None
            self._canceled(order.order_id, order.account, order.client_oid, order.leaves, USER, out)
        self._flush_deltas(out)
        if self.risk:
            self.accounts.flush(out)

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
            if refusal is None and self.risk and not (same_price and cmd.qty <= order.leaves):
                refusal = self._check_relock(order, cmd.price, cmd.qty)
        if refusal is not None:
            self._cancel_rejected(cmd.account, cmd.order_id, cmd.client_oid, refusal, out)
            return
        assert order is not None
        if same_price and cmd.qty <= order.leaves:
            # lowering (or keeping) the quantity at the same price keeps the order's queue position
            if cmd.qty != order.leaves:
                self._release(order, order.leaves - cmd.qty)  # the part no longer open
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
            if self.risk:
                self.accounts.flush(out)
            return
        # a new price or a larger quantity: the old order leaves the book, a new one enters at the back
        book.remove(order)
        if self.risk:  # its lock is released and the new order's taken (_check_relock made sure it fits)
            self._release(order, order.leaves)
            self._relock(order, cmd.price, cmd.qty)
        self._dirty[order.price if order.side is BUY else -order.price] = None
        new_id = ctx.in_seq  # the replace's own in_seq: a later id than every order already resting
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
        rests = self._enter(
            new_id, order.account, order.side, order.type, GTC, cmd.price, cmd.qty, new_coid, order.stp, out
        )
        if self.risk:
            self._settle(rests, out)

    def _check_relock(self, order: Order, price: int, qty: int) -> Refusal | None:
        """Can the account lock ``qty`` at ``price`` for a re-entered order, counting the old order's lock,
        which the replace releases?"""
        hold = order.hold
        assert hold is not None
        rate = price * self._qptl if order.side is BUY else self._bpl
        old_rate = order.price * self._qptl if order.side is BUY else self._bpl
        need, free = qty * rate, hold.free + order.leaves * old_rate
        if need > free:
            detail = f"needs {need} {hold.asset}, free {free} counting the replaced order's lock"
            return RejectReason.INSUFFICIENT_BALANCE, detail
        return None

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
