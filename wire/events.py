"""Events: what the engine did. ``Order`` + past participle, frozen, encoded as msgpack arrays.

Every event starts with ``out_seq`` (the engine's gap-free event number), ``in_seq`` (the journaled command that
caused it) and ``ts`` (that command's sequencer stamp, ns since the epoch). The engine emits, per command, the
order events first, then the trades in execution order, then one ``BookDelta`` per price level the command
changed (its final total), each with that symbol's own gap-free ``update_id``.
"""

from __future__ import annotations

from wire.enums import BalanceCause, CancelReason, OrderType, SelfTradeMode, Side, TimeInForce
from wire.message import Message
from wire.reasons import RejectReason


class OrderAccepted(Message, tag=101, frozen=True):
    """A new order entered matching. ``qty`` is in lots; for a market order by quote amount it is the quantity the
    amount buys (or sells for at most that amount) at the book's prices on arrival, and ``quote_qty`` is that
    amount (0 for every other order). ``stp`` is the order's self-trade prevention mode; it is last and has a default
    so that an events stream written before it was added still decodes (those orders then read as EXPIRE_TAKER,
    whatever mode they had: the mode was not recorded)."""

    out_seq: int
    in_seq: int
    ts: int
    symbol: str
    order_id: int
    account: int
    client_oid: str
    side: Side
    type: OrderType
    tif: TimeInForce
    price: int
    qty: int
    quote_qty: int = 0
    stp: SelfTradeMode = SelfTradeMode.EXPIRE_TAKER


class OrderRejected(Message, tag=102, frozen=True):
    """A PlaceOrder (or the new half of a ReplaceOrder) refused; nothing changed."""

    out_seq: int
    in_seq: int
    ts: int
    symbol: str
    account: int
    client_oid: str
    reason: RejectReason
    detail: str


class TradeExecuted(Message, tag=103, frozen=True):
    """One fill between a resting (maker) order and an incoming (taker) order, at the maker's price.

    ``maker_leaves`` / ``taker_leaves`` are each order's open quantity after this fill (0: fully filled).
    ``maker_fee`` / ``taker_fee`` are the fees each side paid, in integer units of the asset it received (the
    buyer's in the base asset, the seller's in the quote asset), already credited to the venue's fee account.
    """

    out_seq: int
    in_seq: int
    ts: int
    symbol: str
    trade_id: int
    price: int
    qty: int
    taker_side: Side
    maker_order_id: int
    maker_account: int
    maker_leaves: int
    taker_order_id: int
    taker_account: int
    taker_leaves: int
    maker_fee: int = 0
    taker_fee: int = 0


class OrderCanceled(Message, tag=104, frozen=True):
    """An order's open quantity ``leaves`` was removed (it is no longer open)."""

    out_seq: int
    in_seq: int
    ts: int
    symbol: str
    order_id: int
    account: int
    client_oid: str
    leaves: int
    reason: CancelReason


class OrderReplaced(Message, tag=105, frozen=True):
    """A cancel-replace took effect: ``order_id`` now lives on as ``new_order_id`` (the same id when it kept its
    queue priority) with ``price`` and open quantity ``qty``. Trades of the new order, if it crossed, follow."""

    out_seq: int
    in_seq: int
    ts: int
    symbol: str
    order_id: int
    new_order_id: int
    account: int
    client_oid: str
    price: int
    qty: int
    kept_priority: bool


class CancelRejected(Message, tag=106, frozen=True):
    """A CancelOrder, CancelAll or ReplaceOrder refused (unknown order, ...); nothing changed."""

    out_seq: int
    in_seq: int
    ts: int
    symbol: str
    account: int
    order_id: int
    client_oid: str
    reason: RejectReason
    detail: str


class BookDelta(Message, tag=107, frozen=True):
    """The new total open quantity at one price level of one side (0: the level is gone)."""

    out_seq: int
    in_seq: int
    ts: int
    symbol: str
    update_id: int
    side: Side
    price: int
    qty: int


class AccountCreated(Message, tag=108, frozen=True):
    out_seq: int
    in_seq: int
    ts: int
    account: int


class BalanceChanged(Message, tag=109, frozen=True):
    """An account's new ``free`` and ``locked`` amounts of one asset (integer units), and why they changed."""

    out_seq: int
    in_seq: int
    ts: int
    account: int
    asset: str
    free: int
    locked: int
    cause: BalanceCause


class FundingRejected(Message, tag=110, frozen=True):
    """A CreateAccount, Deposit, Withdraw or SetFeeRates refused; nothing changed (``asset`` and ``amount`` are
    empty and 0 for the commands without them)."""

    out_seq: int
    in_seq: int
    ts: int
    account: int
    asset: str
    amount: int
    reason: RejectReason
    detail: str


class FeeRatesSet(Message, tag=111, frozen=True):
    """``account`` now pays these maker and taker rates (basis points) on every symbol; -1 and -1: the symbols'
    own rates again."""

    out_seq: int
    in_seq: int
    ts: int
    account: int
    maker_bps: int
    taker_bps: int


class MatchPrevented(Message, tag=112, frozen=True):
    """Self-trade prevention stopped an incoming (taker) order of ``account`` from trading with one of its own
    resting (maker) orders at ``price``: Binance's prevented match. ``match_id`` counts per symbol from 1, like
    trade ids. ``mode`` is the taker's self-trade prevention mode, which decided: ``taker_qty`` / ``maker_qty`` are
    the open quantities it expired (0 for the order it left alone: the maker under EXPIRE_TAKER, the taker under
    EXPIRE_MAKER). It comes right before the OrderCanceled events (reason SELF_TRADE) of the orders it expired."""

    out_seq: int
    in_seq: int
    ts: int
    symbol: str
    match_id: int
    account: int
    taker_order_id: int
    maker_order_id: int
    price: int
    mode: SelfTradeMode
    taker_qty: int
    maker_qty: int


Event = (
    OrderAccepted
    | OrderRejected
    | TradeExecuted
    | OrderCanceled
    | OrderReplaced
    | CancelRejected
    | BookDelta
    | AccountCreated
    | BalanceChanged
    | FundingRejected
    | FeeRatesSet
    | MatchPrevented
)
