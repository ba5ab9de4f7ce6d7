"""What a bot decides (an order to place, a quote to move, an order to cancel), what the venue answered, and what
an account's order reports said: plain data shared by the bots and the three protocol clients."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sim.grid import text


@dataclass(frozen=True, slots=True)
class Order:
    symbol: str
    side: str  # BUY or SELL
    type: str  # LIMIT or MARKET
    client_id: str
    qty: Decimal | None = None  # None: a MARKET order by quote amount
    price: Decimal | None = None  # LIMIT only
    tif: str | None = None  # LIMIT only: GTC, IOC or FOK
    quote_qty: Decimal | None = None  # a MARKET order by quote amount

    def params(self) -> dict[str, str]:
        """The order's Binance parameters (REST and the WebSocket API take the same ones), decimals on the grid."""
        out = {"symbol": self.symbol, "side": self.side, "type": self.type, "newClientOrderId": self.client_id,
               "newOrderRespType": "RESULT"}  # fmt: skip
        if self.qty is not None:
            out["quantity"] = text(self.qty)
        if self.quote_qty is not None:
            out["quoteOrderQty"] = text(self.quote_qty)
        if self.price is not None:
            out["price"] = text(self.price)
        if self.tif is not None:
            out["timeInForce"] = self.tif
        return out


@dataclass(frozen=True, slots=True)
class Place:
    order: Order
    slot: int  # which of the bot's accounts sends it (an index into them)


@dataclass(frozen=True, slots=True)
class Replace:
    """Cancel the order ``old_client_id`` and place ``order`` instead (a market maker moving a quote)."""

    old_client_id: str
    order: Order
    slot: int


@dataclass(frozen=True, slots=True)
class Cancel:
    symbol: str
    side: str
    client_id: str
    slot: int


Action = Place | Replace | Cancel


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool  # the new order was accepted (for a cancel: the order was canceled)
    code: int | str | None = None  # why not: Binance's code, or the FIX message's reason ("FIX 103=3")
    msg: str = ""  # ... and the venue's words for it
    status: str = ""  # the new order's status when the answer says it (NEW, FILLED, EXPIRED, ...)
    retry_after: float | None = None  # throttled, or the venue is busy: seconds to wait before the next order
    gone: bool = False  # a replace or cancel found its old order gone (filled or canceled meanwhile)
    http_status: int = 0  # the HTTP status of a REST answer (0 for the other protocols)
    transport: str = ""  # no answer at all: what went wrong (connection refused, closed, timed out)


def no_answer(why: str) -> Outcome:
    return Outcome(ok=False, transport=why)


@dataclass(frozen=True, slots=True)
class Report:
    """One of an account's order reports (executionReport, or a FIX ExecutionReport): a fill, or the order's end."""

    symbol: str
    client_id: str  # the order's client id (after a replace, the new one)
    side: str
    fill_qty: Decimal  # 0 when the report is not a fill
    fill_price: Decimal
    done: bool  # the order is no longer open
