"""The PostgreSQL read model: folds events into the rows persistence/postgres.py writes (no I/O here).

State kept between batches: the open orders and every balance, loaded from the database at start, so that an
event changes a row without reading it back. Each batch's rows are collected in ``Rows`` and written in one
transaction with the consumer's offset; when a write fails the persister drops this model and loads a new one from
the database, so a half-applied batch never lingers in memory.

The ledger (see migrations/0002) holds transfers: an amount of an asset moved from one (account, bucket) to
another, so every row is both sides of a double entry. It is built per command, because the engine reports a
command's balances once, with their final amounts, after its trades: each trade gives its legs and fees (payer's
``locked`` to receiver's ``free``, the fee from the receiver's ``free`` to the fee account), and what a
BalanceChanged adds beyond the command's trades is a deposit or withdrawal (from or to account -1, the world
outside) or a move between ``free`` and ``locked`` (an order's lock or release). Anything else means the events and
the rules disagree: it is booked from the suspense account -2 so the ledger still balances, and quarantined so that
someone looks at it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.accounts import FEE_ACCOUNT
from persistence.stream import Quarantined
from wire.codec import encode
from wire.enums import BalanceCause, CancelReason, Side
from wire.events import (
    AccountCreated,
    BalanceChanged,
    BookDelta,
    CancelRejected,
    Event,
    FeeRatesSet,
    FundingRejected,
    MatchPrevented,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderReplaced,
    TradeExecuted,
)
from wire.venue import SymbolSpec

EXTERNAL = -1  # ledger account of the world outside the venue
SUSPENSE = -2  # ledger account of what the events could not explain

OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
CANCEL_STATUS = {
    CancelReason.USER: "CANCELED",
    CancelReason.IOC_REMAINDER: "EXPIRED",
    CancelReason.FOK_NOT_FILLABLE: "EXPIRED",
    CancelReason.SELF_TRADE: "EXPIRED_IN_MATCH",  # Binance's status for an order expired by self-trade prevention
}

ORDER_COLUMNS = (
    "order_id", "symbol", "account", "client_oid", "side", "type", "tif", "price", "orig_qty", "quote_qty",
    "executed_qty", "cum_quote", "leaves", "status", "cancel_reason", "replaces", "replaced_by", "created_ts",
    "updated_ts", "created_out_seq", "updated_out_seq", "stp", "prevented_qty", "prevented_match_id",
)  # fmt: skip


@dataclass(slots=True)
class OrderRow:
    order_id: int
    symbol: str
    account: int
    client_oid: str
    side: str
    type: str
    tif: str
    price: int
    orig_qty: int
    quote_qty: int
    executed_qty: int
    cum_quote: int
    leaves: int
    status: str
    cancel_reason: str | None
    replaces: int | None
    replaced_by: int | None
    created_ts: int
    updated_ts: int
    created_out_seq: int
    updated_out_seq: int
    stp: str  # self-trade prevention mode: NONE, EXPIRE_TAKER, EXPIRE_MAKER or EXPIRE_BOTH
    prevented_qty: int = 0  # open quantity self-trade prevention expired (Binance's preventedQuantity)
    prevented_match_id: int | None = None  # the prevented match that did

    def record(self) -> tuple[Any, ...]:
        return (
            self.order_id, self.symbol, self.account, self.client_oid, self.side, self.type, self.tif, self.price,
            self.orig_qty, self.quote_qty, self.executed_qty, self.cum_quote, self.leaves, self.status,
            self.cancel_reason, self.replaces, self.replaced_by, self.created_ts, self.updated_ts,
            self.created_out_seq, self.updated_out_seq, self.stp, self.prevented_qty, self.prevented_match_id,
        )  # fmt: skip


@dataclass(slots=True)
class Rows:
    """One batch's writes. Orders and balances hold their latest state (one upsert each); the rest are appends."""

    orders: dict[int, OrderRow] = field(default_factory=dict)  # while folding: the orders the batch changed
    created: set[int] = field(default_factory=set)  # ... of which these entered in this batch
    # their rows, copied when the batch is taken: inserts (orders new in the batch) and updates (older ones)
    order_inserts: list[tuple[Any, ...]] = field(default_factory=list)
    order_changes: list[tuple[Any, ...]] = field(default_factory=list)
    order_updates: list[tuple[Any, ...]] = field(default_factory=list)
    trades: list[tuple[Any, ...]] = field(default_factory=list)
    prevented: list[tuple[Any, ...]] = field(default_factory=list)  # prevented matches
    ledger: list[tuple[Any, ...]] = field(default_factory=list)
    balances: dict[tuple[int, str], tuple[int, str, int, int, int]] = field(default_factory=dict)
    accounts: list[tuple[int, int, int]] = field(default_factory=list)
    fee_rates: list[tuple[int, int | None, int | None]] = field(default_factory=list)
    rejections: list[tuple[Any, ...]] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    suspense: int = 0  # balances whose change was booked to the suspense account


class _Command:
    """What one command did to balances, gathered until its last event: trade legs and fees per (account, asset)
    as [free, locked] deltas, and the BalanceChanged events it emitted."""

    __slots__ = ("in_seq", "last_event", "moves", "reported")

    def __init__(self, in_seq: int, first: Event) -> None:
        self.in_seq = in_seq
        self.last_event = first
        self.moves: dict[tuple[int, str], list[int]] = {}
        self.reported: dict[tuple[int, str], BalanceChanged] = {}


class PostgresModel:
    def __init__(
        self,
        specs: Mapping[str, SymbolSpec],
        open_orders: Iterable[OrderRow] = (),
        balances: Iterable[tuple[int, str, int, int]] = (),
    ) -> None:
        self.specs = dict(specs)
        self.open: dict[int, OrderRow] = {row.order_id: row for row in open_orders}
        self.balances: dict[tuple[int, str], tuple[int, int]] = {(a, s): (f, lk) for a, s, f, lk in balances}
        self.rows = Rows()
        self._cmd: _Command | None = None
        self.next_line: dict[int, int] = {}  # the next ledger line number of an event of the current command
        self._handlers: dict[type, Callable[[Any], None]] = {
            OrderAccepted: self._accepted,
            TradeExecuted: self._trade,
            OrderCanceled: self._canceled,
            OrderReplaced: self._replaced,
            MatchPrevented: self._prevented,
            BookDelta: _ignore,
            BalanceChanged: self._balance,
            AccountCreated: self._account,
            FeeRatesSet: self._fee_rates,
            OrderRejected: self._order_rejected,
            CancelRejected: self._cancel_rejected,
            FundingRejected: self._funding_rejected,
        }

    def settle(self) -> None:
        """Finish the current command now (its ledger and balances), when the caller knows it is complete."""
        self._finish_command()

    def take_rows(self) -> Rows:
        """The rows folded since the last call. A command's events always sit in one stream entry (the engine
        appends whole batches of commands), so a chunk of whole entries ends with a whole command."""
        self._finish_command()
        rows, self.rows = self.rows, Rows()
        # copied now: the OrderRow objects stay in the model and change with the next batch, which may be folded
        # while this one is still being written
        created = rows.created
        for order_id, row in rows.orders.items():
            (rows.order_inserts if order_id in created else rows.order_changes).append(row.record())
        return rows

    def apply(self, events: Iterable[Event], stream_id: str = "") -> None:
        for ev in events:
            cmd = self._cmd
            if cmd is None or cmd.in_seq != ev.in_seq:
                self._finish_command()
                cmd = self._cmd = _Command(ev.in_seq, ev)
            cmd.last_event = ev
            try:
                self._handlers[type(ev)](ev)
            except _Unusable as exc:
                self.rows.quarantined.append(Quarantined(stream_id, ev.out_seq, encode(ev), str(exc)))

    # --- orders --------------------------------------------------------------------------------------------

    def _order(self, order_id: int, ev: Event) -> OrderRow:
        row = self.open.get(order_id)
        if row is None:
            raise _Unusable(f"order {order_id} is not open (unknown or already closed)")
        self.rows.orders[order_id] = row
        row.updated_ts, row.updated_out_seq = ev.ts, ev.out_seq
        return row

    def _history(self, ev: Event, row: OrderRow, kind: str, last_qty: int = 0, last_price: int = 0,
                 trade_id: int | None = None) -> None:  # fmt: skip
        self.rows.order_updates.append(
            (ev.out_seq, row.order_id, row.account, row.symbol, ev.ts, kind, row.status, row.price, row.executed_qty,
             row.leaves, last_qty, last_price, trade_id)
        )  # fmt: skip

    def _spec(self, symbol: str) -> SymbolSpec:
        spec = self.specs.get(symbol)
        if spec is None:
            raise _Unusable(f"unknown symbol {symbol!r}")
        return spec

    def _accepted(self, ev: OrderAccepted) -> None:
        self._spec(ev.symbol)
        if ev.order_id in self.open:
            raise _Unusable(f"order {ev.order_id} is already open")
        row = OrderRow(
            ev.order_id, ev.symbol, ev.account, ev.client_oid, ev.side.name, ev.type.name, ev.tif.name, ev.price,
            ev.qty, ev.quote_qty, 0, 0, ev.qty, "NEW", None, None, None, ev.ts, ev.ts, ev.out_seq, ev.out_seq,
            ev.stp.name,
        )  # fmt: skip
        self.open[ev.order_id] = self.rows.orders[ev.order_id] = row
        self.rows.created.add(ev.order_id)
        self._history(ev, row, "NEW")

    def _fill(self, ev: TradeExecuted, order_id: int, leaves: int, quote: int) -> None:
        row = self._order(order_id, ev)
        row.executed_qty += ev.qty
        row.cum_quote += quote
        row.leaves = leaves
        if leaves:
            row.status = "PARTIALLY_FILLED"
        else:
            row.status = "FILLED"
            del self.open[order_id]
        self._history(ev, row, "TRADE", ev.qty, ev.price, ev.trade_id)

    def _canceled(self, ev: OrderCanceled) -> None:
        row = self._order(ev.order_id, ev)
        row.status = CANCEL_STATUS[ev.reason]
        row.cancel_reason = ev.reason.name
        row.leaves = 0
        del self.open[ev.order_id]
        self._history(ev, row, "CANCELED" if row.status == "CANCELED" else "EXPIRED")

    def _prevented(self, ev: MatchPrevented) -> None:
        """A self-trade stop: what it expired is on each order before the cancel that closes it comes."""
        self._spec(ev.symbol)
        for order_id, qty in ((ev.taker_order_id, ev.taker_qty), (ev.maker_order_id, ev.maker_qty)):
            if qty:
                row = self._order(order_id, ev)
                row.prevented_qty += qty
                row.prevented_match_id = ev.match_id
        self.rows.prevented.append(
            (ev.symbol, ev.match_id, ev.account, ev.taker_order_id, ev.maker_order_id, ev.price, ev.mode.name,
             ev.taker_qty, ev.maker_qty, ev.ts, ev.out_seq)
        )  # fmt: skip

    def _replaced(self, ev: OrderReplaced) -> None:
        row = self._order(ev.order_id, ev)
        if ev.kept_priority:  # amended in place: a smaller open quantity, perhaps a new client id
            row.client_oid = ev.client_oid
            row.leaves = ev.qty
            row.orig_qty = row.executed_qty + ev.qty
            self._history(ev, row, "AMENDED")
            return
        row.status, row.cancel_reason, row.leaves, row.replaced_by = "CANCELED", "REPLACED", 0, ev.new_order_id
        del self.open[ev.order_id]
        self._history(ev, row, "REPLACED")
        new = OrderRow(
            ev.new_order_id, row.symbol, row.account, ev.client_oid, row.side, row.type, "GTC", ev.price, ev.qty, 0,
            0, 0, ev.qty, "NEW", None, row.order_id, None, ev.ts, ev.ts, ev.out_seq, ev.out_seq, row.stp,
        )  # fmt: skip
        self.open[new.order_id] = self.rows.orders[new.order_id] = new
        self.rows.created.add(new.order_id)
        self._history(ev, new, "NEW")

    # --- trades and the ledger -----------------------------------------------------------------------------

    def _trade(self, ev: TradeExecuted) -> None:
        spec = self._spec(ev.symbol)
        base, quote = ev.qty * spec.base_per_lot, ev.price * ev.qty * spec.quote_per_tick_lot
        for order_id in (ev.maker_order_id, ev.taker_order_id):
            if order_id not in self.open:
                raise _Unusable(f"trade {ev.trade_id}: order {order_id} is not open")
        self._fill(ev, ev.maker_order_id, ev.maker_leaves, quote)
        self._fill(ev, ev.taker_order_id, ev.taker_leaves, quote)
        self.rows.trades.append(
            (ev.symbol, ev.trade_id, ev.price, ev.qty, quote, ev.taker_side.name, ev.maker_order_id,
             ev.maker_account, ev.maker_fee, ev.taker_order_id, ev.taker_account, ev.taker_fee, ev.ts, ev.out_seq)
        )  # fmt: skip
        if ev.taker_side is Side.BUY:
            buyer, seller, buyer_fee, seller_fee = ev.taker_account, ev.maker_account, ev.taker_fee, ev.maker_fee
        else:
            buyer, seller, buyer_fee, seller_fee = ev.maker_account, ev.taker_account, ev.maker_fee, ev.taker_fee
        lines = _Lines(self, ev, ev.symbol, ev.trade_id)
        lines.move("TRADE", spec.quote, quote, buyer, "locked", seller, "free")
        lines.move("TRADE", spec.base, base, seller, "locked", buyer, "free")
        lines.move("FEE", spec.quote, seller_fee, seller, "free", FEE_ACCOUNT, "free")
        lines.move("FEE", spec.base, buyer_fee, buyer, "free", FEE_ACCOUNT, "free")

    def _balance(self, ev: BalanceChanged) -> None:
        assert self._cmd is not None
        self._cmd.reported[(ev.account, ev.asset)] = ev

    def _finish_command(self) -> None:
        """Book what the command's BalanceChanged events add beyond its trades, and store the new balances."""
        cmd, self._cmd = self._cmd, None
        if cmd is None or not (cmd.moves or cmd.reported):
            return
        keys = list(cmd.reported)
        keys += [key for key in cmd.moves if key not in cmd.reported]
        for key in keys:
            account, asset = key
            free, locked = before = self.balances.get(key, (0, 0))
            moved_free, moved_locked = cmd.moves.get(key, (0, 0))
            reported = cmd.reported.get(key)
            source: Event
            if reported is not None:
                free, locked, source = reported.free, reported.locked, reported
            else:  # the fee account's (no BalanceChanged on trades), or a balance the command left as it was
                if account == FEE_ACCOUNT:
                    free, locked = free + moved_free, locked + moved_locked
                source = cmd.last_event
            rest_free = free - before[0] - moved_free
            rest_locked = locked - before[1] - moved_locked
            if rest_free or rest_locked:
                self._book_rest(source, cmd, account, asset, rest_free, rest_locked)
            self.balances[key] = (free, locked)
            self.rows.balances[key] = (account, asset, free, locked, source.out_seq)
        self.next_line.clear()

    def _book_rest(self, source: Event, cmd: _Command, account: int, asset: str, free: int, locked: int) -> None:
        lines = _Lines(self, source)
        cause = source.cause if isinstance(source, BalanceChanged) else None
        if cause in (BalanceCause.DEPOSIT, BalanceCause.WITHDRAWAL) and locked == 0:
            lines.move("DEPOSIT" if free > 0 else "WITHDRAWAL", asset, free, EXTERNAL, "external", account, "free")
            return
        if free + locked == 0:
            lines.move("LOCK" if locked > 0 else "RELEASE", asset, locked, account, "free", account, "locked")
            return
        lines.move("SUSPENSE", asset, free, SUSPENSE, "external", account, "free")
        lines.move("SUSPENSE", asset, locked, SUSPENSE, "external", account, "locked")
        self.rows.suspense += 1
        self.rows.quarantined.append(
            Quarantined(
                "", source.out_seq, encode(source),
                f"command {cmd.in_seq}: account {account} {asset} changed by free {free:+d} locked {locked:+d} beyond"
                " its trades, which is neither a deposit, a withdrawal nor a lock; booked to suspense",
            )
        )  # fmt: skip

    # --- accounts and refusals -----------------------------------------------------------------------------

    def _account(self, ev: AccountCreated) -> None:
        self.rows.accounts.append((ev.account, ev.ts, ev.out_seq))

    def _fee_rates(self, ev: FeeRatesSet) -> None:
        reset = ev.maker_bps < 0 and ev.taker_bps < 0
        self.rows.fee_rates.append((ev.account, None if reset else ev.maker_bps, None if reset else ev.taker_bps))

    def _order_rejected(self, ev: OrderRejected) -> None:
        self.rows.rejections.append(
            (ev.out_seq, ev.in_seq, ev.ts, "ORDER", ev.account, ev.symbol, 0, ev.client_oid, "", 0, ev.reason.name,
             ev.detail)
        )  # fmt: skip

    def _cancel_rejected(self, ev: CancelRejected) -> None:
        self.rows.rejections.append(
            (ev.out_seq, ev.in_seq, ev.ts, "CANCEL", ev.account, ev.symbol, ev.order_id, ev.client_oid, "", 0,
             ev.reason.name, ev.detail)
        )  # fmt: skip

    def _funding_rejected(self, ev: FundingRejected) -> None:
        self.rows.rejections.append(
            (ev.out_seq, ev.in_seq, ev.ts, "FUNDING", ev.account, "", 0, "", ev.asset, ev.amount, ev.reason.name,
             ev.detail)
        )  # fmt: skip


class _Unusable(Exception):
    """An event that contradicts the model (unknown order, unknown symbol): quarantined, not applied."""


class _Lines:
    """Ledger transfers of one event, numbered in order; zero amounts are skipped. Trades and fees of a command
    that has not finished also count as its moves, to tell its other balance changes apart."""

    __slots__ = ("event", "model", "n", "symbol", "trade_id")

    def __init__(self, model: PostgresModel, event: Event, symbol: str | None = None, trade_id: int | None = None):
        self.model, self.event, self.symbol, self.trade_id = model, event, symbol, trade_id
        self.n = model.next_line.get(event.out_seq, 0)

    def move(self, kind: str, asset: str, amount: int, debit: int, debit_bucket: str, credit: int,
             credit_bucket: str) -> None:  # fmt: skip
        """``amount`` of ``asset`` from (debit, debit_bucket) to (credit, credit_bucket); a negative amount moves
        the other way (stored positive, the sides swapped)."""
        if not amount:
            return
        if amount < 0:
            amount, debit, debit_bucket, credit, credit_bucket = -amount, credit, credit_bucket, debit, debit_bucket
        ev, model = self.event, self.model
        model.rows.ledger.append(
            (ev.out_seq, self.n, ev.in_seq, ev.ts, kind, asset, amount, debit, debit_bucket, credit, credit_bucket,
             self.symbol, self.trade_id)
        )  # fmt: skip
        self.n += 1
        model.next_line[ev.out_seq] = self.n
        if kind in ("TRADE", "FEE") and model._cmd is not None:
            moves = model._cmd.moves
            moves.setdefault((debit, asset), [0, 0])[debit_bucket == "locked"] -= amount
            moves.setdefault((credit, asset), [0, 0])[credit_bucket == "locked"] += amount


def _ignore(ev: Event) -> None:
    """BookDelta: market data, kept by the feeds and MongoDB, not here."""
