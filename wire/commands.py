"""Commands: what gateways ask the engine to do. Imperative names, frozen, encoded as msgpack arrays.

Every command starts with ``src`` (the submitting gateway's id) and ``req`` (that gateway's request counter).
Together they are the request id the sequencer deduplicates on: a command whose request id was journaled
before is never journaled again, so a retry after a lost acknowledgement cannot create a second order.

On the wire a command is ``[tag, src, req, field, ...]`` (msgspec ``array_like`` with an integer tag). Fields
with defaults sit at the end so that later versions can append fields without breaking old readers.
"""

from __future__ import annotations

from wire.enums import OrderType, SelfTradeMode, Side, TimeInForce
from wire.message import Message


class PlaceOrder(Message, tag=1, frozen=True):
    """Place a new order. ``price`` is in ticks (ignored for MARKET), ``qty`` in lots.

    A MARKET order may give ``quote_qty`` instead of ``qty`` (which is then 0): the amount of the quote asset to
    spend (BUY) or to receive at most, before fees (SELL), in that asset's integer units (Binance's
    ``quoteOrderQty``). The engine converts it into lots at the book's prices when the order arrives.
    """

    src: str
    req: int
    account: int
    symbol: str
    side: Side
    type: OrderType
    tif: TimeInForce
    price: int
    qty: int
    client_oid: str
    stp: SelfTradeMode = SelfTradeMode.EXPIRE_TAKER
    quote_qty: int = 0


class CancelOrder(Message, tag=2, frozen=True):
    """Cancel one open order, by ``order_id`` or, when it is 0, by ``client_oid``."""

    src: str
    req: int
    account: int
    symbol: str
    order_id: int
    client_oid: str


class ReplaceOrder(Message, tag=3, frozen=True):
    """Cancel-replace an open order (found as in CancelOrder) with a new price and open quantity.

    Lowering the quantity at the same price keeps the order's id and its place in the queue; a new price or a
    larger quantity cancels it and enters a new order (new id, back of the queue, may match at once).
    ``new_client_oid`` empty keeps the old client order id.
    """

    src: str
    req: int
    account: int
    symbol: str
    order_id: int
    client_oid: str
    new_client_oid: str
    price: int
    qty: int


class CancelAll(Message, tag=4, frozen=True):
    """Cancel every open order of ``account`` on ``symbol``."""

    src: str
    req: int
    account: int
    symbol: str


class CreateAccount(Message, tag=5, frozen=True):
    """Open ``account`` (an id > 0 chosen by the operator; 0 is the venue's own fee account)."""

    src: str
    req: int
    account: int


class Deposit(Message, tag=6, frozen=True):
    """Credit ``amount`` (integer units of the asset, see wire.venue.AssetSpec) to the account's free balance."""

    src: str
    req: int
    account: int
    asset: str
    amount: int


class Withdraw(Message, tag=7, frozen=True):
    """Debit ``amount`` from the account's free balance; refused if it exceeds what is free."""

    src: str
    req: int
    account: int
    asset: str
    amount: int


class SetFeeRates(Message, tag=8, frozen=True):
    """Give ``account`` its own maker and taker fee rates (basis points, 0 <= rate < 10 000) on every symbol, in
    place of the symbols' rates; -1 for both goes back to the symbols' rates."""

    src: str
    req: int
    account: int
    maker_bps: int
    taker_bps: int


class TakeSnapshot(Message, tag=9, frozen=True):
    """Ask the engine to snapshot its whole state at this point of the journal (a known in_seq)."""

    src: str
    req: int


Command = (
    PlaceOrder
    | CancelOrder
    | ReplaceOrder
    | CancelAll
    | CreateAccount
    | Deposit
    | Withdraw
    | SetFeeRates
    | TakeSnapshot
)
