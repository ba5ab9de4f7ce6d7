"""FIX 4.4 application messages to and from the gateway's Binance-style operations, as plain data (no I/O).

Incoming orders become the same parameters a REST client sends (gateways/http/app.py validates them, so FIX and REST
refuse the same input with the same reasons); outgoing execution reports are made from the same ``executionReport``
events the user data stream carries. Decimal strings pass through unchanged: the gateway converts them exactly to
ticks and lots and refuses values off the grid.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from gateways.binance import errors
from gateways.binance.errors import ApiError

Fields = list[tuple[int, str]]

# tags
ACCOUNT, AVG_PX, CL_ORD_ID, COMMISSION, CUM_QTY, EXEC_ID, EXEC_INST, LAST_PX, LAST_QTY = (
    1,
    6,
    11,
    12,
    14,
    17,
    18,
    31,
    32,
)
ORDER_ID, ORDER_QTY, ORD_STATUS, ORD_TYPE, ORIG_CL_ORD_ID, PRICE, SIDE, SYMBOL, TEXT = (
    37,
    38,
    39,
    40,
    41,
    44,
    54,
    55,
    58,
)
TIME_IN_FORCE, TRANSACT_TIME, ORD_REJ_REASON, CXL_REJ_REASON, EXEC_TYPE, LEAVES_QTY = 59, 60, 103, 102, 150, 151
CASH_ORDER_QTY, REF_MSG_TYPE, BUSINESS_REJECT_REF_ID, BUSINESS_REJECT_REASON = 152, 372, 379, 380
CXL_REJ_RESPONSE_TO, COMM_CURRENCY, MASS_CANCEL_REQUEST_TYPE, MASS_CANCEL_RESPONSE = 434, 479, 530, 531
TOTAL_AFFECTED_ORDERS, MASS_CANCEL_REJECT_REASON, TRADE_ID = 533, 532, 1003
STOP_PX, MAX_FLOOR = 99, 111
# fields that would change what an order does, passed on as their REST parameters so that both refuse them alike
UNSUPPORTED = ((MAX_FLOOR, "icebergQty"), (STOP_PX, "stopPrice"))

SIDES = {"1": "BUY", "2": "SELL"}
FIX_SIDE = {v: k for k, v in SIDES.items()}
TIME_IN_FORCE_OF = {"1": "GTC", "3": "IOC", "4": "FOK"}
FIX_TIF = {v: k for k, v in TIME_IN_FORCE_OF.items()}
FIX_ORD_TYPE = {"MARKET": "1", "LIMIT": "2", "LIMIT_MAKER": "2"}
POST_ONLY = "6"  # ExecInst: participate, don't initiate
EXEC_TYPES = {"NEW": "0", "TRADE": "F", "CANCELED": "4", "EXPIRED": "C", "TRADE_PREVENTION": "C", "REJECTED": "8",
              "REPLACED": "5"}  # fmt: skip
ORD_STATUSES = {"NEW": "0", "PARTIALLY_FILLED": "1", "FILLED": "2", "CANCELED": "4", "REJECTED": "8",
                "EXPIRED": "C", "EXPIRED_IN_MATCH": "C", "PENDING_NEW": "A"}  # fmt: skip
TERMINAL = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"})

# OrdRejReason (103) for the gateway's error codes; anything else is 99 (other), with the message in Text
# (a filter failure is 13, incorrect quantity, when the quantity broke it: LOT_SIZE, MARKET_LOT_SIZE, NOTIONAL)
ORD_REJ_REASONS = {-1121: "1", -2010: "3", -1111: "13"}
QUANTITY_FILTERS = ("LOT_SIZE", "NOTIONAL")
# OrderCancelReject's CxlRejReason (102): 1 unknown order, 99 other
CXL_REJ_REASONS = {-2011: "1", -2013: "1"}

# BusinessRejectReason (380)
BUSINESS_OTHER, BUSINESS_UNKNOWN_ID, BUSINESS_UNSUPPORTED, BUSINESS_NOT_AVAILABLE = "0", "1", "3", "4"


class Refused(Exception):
    """An order message the gateway refuses before it reaches the engine: sent back as a rejection."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason, self.text = reason, text


def decimal_text(tag: int, value: str) -> str:
    """A FIX decimal as the exact string REST takes; refuses what is not a plain decimal."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise Refused("99", f"tag {tag}: {value!r} is not a decimal") from None
    if not number.is_finite() or "e" in value.lower():
        raise Refused("99", f"tag {tag}: {value!r} is not a plain decimal")
    return value


def order_params(f: dict[int, str]) -> dict[str, Any]:
    """NewOrderSingle (D) as the parameters of POST /api/v3/order (ACK: its reports come from the engine's events).

    OrdType 1 (market) with OrderQty or CashOrderQty, 2 (limit) with Price; ExecInst 6 makes a limit order post-only
    (LIMIT_MAKER); TimeInForce 1 GTC (also when absent: Mercury has no day orders), 3 IOC, 4 FOK."""
    params: dict[str, Any] = {"symbol": f.get(SYMBOL, ""), "newClientOrderId": f.get(CL_ORD_ID, ""),
                              "newOrderRespType": "ACK"}  # fmt: skip
    side = SIDES.get(f.get(SIDE, ""))
    if side is None:
        raise Refused("99", f"Side {f.get(SIDE)!r} is not supported: 1 (buy) or 2 (sell)")
    params["side"] = side
    ord_type = f.get(ORD_TYPE)
    post_only = POST_ONLY in f.get(EXEC_INST, "").split()
    if ord_type == "1":
        params["type"] = "MARKET"
        if CASH_ORDER_QTY in f:
            params["quoteOrderQty"] = decimal_text(CASH_ORDER_QTY, f[CASH_ORDER_QTY])
    elif ord_type == "2":
        params["type"] = "LIMIT_MAKER" if post_only else "LIMIT"
        if PRICE in f:
            params["price"] = decimal_text(PRICE, f[PRICE])
    else:
        raise Refused("11", f"OrdType {ord_type!r} is not supported: 1 (market) or 2 (limit)")
    if ORDER_QTY in f:
        params["quantity"] = decimal_text(ORDER_QTY, f[ORDER_QTY])
    for tag, name in UNSUPPORTED:
        if tag in f:
            params[name] = f[tag]
    tif = f.get(TIME_IN_FORCE, "1")
    if params["type"] == "LIMIT":
        if tif not in TIME_IN_FORCE_OF:
            raise Refused("11", f"TimeInForce {tif!r} is not supported: 1 (GTC), 3 (IOC) or 4 (FOK)")
        params["timeInForce"] = TIME_IN_FORCE_OF[tif]
    elif tif not in ("1", "3") and TIME_IN_FORCE in f:  # a market order is IOC by nature; post-only rests
        raise Refused("11", f"TimeInForce {tif!r} does not go with OrdType {ord_type}")
    return params


def order_ref(f: dict[int, str]) -> dict[str, Any]:
    """The order a cancel, replace or status request names: OrderID (37) if given, else OrigClOrdID (41)."""
    params: dict[str, Any] = {"symbol": f.get(SYMBOL, "")}
    order_id = f.get(ORDER_ID, "")
    if order_id.isdigit():
        params["orderId"] = order_id
    elif ORIG_CL_ORD_ID in f:
        params["origClientOrderId"] = f[ORIG_CL_ORD_ID]
    elif CL_ORD_ID in f and f.get(ORDER_ID) is None:  # a status request may name the order by its own ClOrdID
        params["origClientOrderId"] = f[CL_ORD_ID]
    return params


def rejection_reason(error: ApiError) -> str:
    if error.code == -1106 or error is errors.ICEBERG_NOT_SUPPORTED:
        return "11"  # unsupported order characteristic: a field that does not go with the order, or a kind not offered
    if error.code == -1013 and any(name in error.msg for name in QUANTITY_FILTERS):
        return "13"
    return ORD_REJ_REASONS.get(error.code, "99")


def average(cum_quote: str, cum_qty: str) -> str:
    qty = Decimal(cum_qty)
    if not qty:
        return "0"
    return format((Decimal(cum_quote) / qty).normalize(), "f")


def execution_report(r: dict[str, Any], exec_id: str, cl_ord_id: str | None = None,
                     orig_cl_ord_id: str | None = None) -> Fields:  # fmt: skip
    """An ExecutionReport (8) from a Binance ``executionReport`` event (or an order's status: ExecType I)."""
    status = r["X"]
    leaves = "0" if status in TERMINAL else format(Decimal(r["q"]) - Decimal(r["z"]), "f")
    fields: Fields = [
        (ORDER_ID, str(r["i"])),
        (CL_ORD_ID, cl_ord_id or r["c"]),
        (EXEC_ID, exec_id),
        (EXEC_TYPE, EXEC_TYPES.get(r["x"], "I") if r["x"] != "STATUS" else "I"),
        (ORD_STATUS, ORD_STATUSES.get(status, "0")),
        (SYMBOL, r["s"]),
        (SIDE, FIX_SIDE[r["S"]]),
        (ORD_TYPE, FIX_ORD_TYPE.get(r["o"], "2")),
        (ORDER_QTY, r["q"]),
        (LEAVES_QTY, leaves),
        (CUM_QTY, r["z"]),
        (AVG_PX, average(r["Z"], r["z"])),
        (TRANSACT_TIME, utc_timestamp(int(r["T"]))),
    ]
    if orig_cl_ord_id:
        fields.append((ORIG_CL_ORD_ID, orig_cl_ord_id))
    if r["o"] != "MARKET":
        fields.append((PRICE, r["p"]))
        fields.append((TIME_IN_FORCE, FIX_TIF.get(r["f"], "1")))
    if r["o"] == "LIMIT_MAKER":
        fields.append((EXEC_INST, POST_ONLY))
    if r["x"] == "TRADE":
        fields += [(LAST_QTY, r["l"]), (LAST_PX, r["L"])]
        if r.get("N"):
            fields += [(COMMISSION, r["n"]), (COMM_CURRENCY, r["N"])]
    return fields


def rejected_order(params: dict[str, Any], f: dict[int, str], exec_id: str, reason: str, text: str,
                   order_id: str = "NONE") -> Fields:  # fmt: skip
    """An ExecutionReport (8) ExecType 8 for an order that never rested."""
    return [
        (ORDER_ID, order_id),
        (CL_ORD_ID, f.get(CL_ORD_ID, "")),
        (EXEC_ID, exec_id),
        (EXEC_TYPE, "8"),
        (ORD_STATUS, "8"),
        (SYMBOL, f.get(SYMBOL, "") or "NONE"),
        (SIDE, f.get(SIDE, "") if f.get(SIDE) in SIDES else "1"),
        (LEAVES_QTY, "0"),
        (CUM_QTY, "0"),
        (AVG_PX, "0"),
        (ORD_REJ_REASON, reason),
        (TEXT, text[:200]),
    ]


def cancel_reject(f: dict[int, str], order_id: str, response_to: str, reason: str, text: str) -> Fields:
    """OrderCancelReject (9): CxlRejResponseTo 1 for a cancel, 2 for a cancel/replace."""
    return [
        (ORDER_ID, order_id or "NONE"),
        (CL_ORD_ID, f.get(CL_ORD_ID, "")),
        (ORIG_CL_ORD_ID, f.get(ORIG_CL_ORD_ID, "") or "NONE"),
        (ORD_STATUS, "8"),
        (CXL_REJ_RESPONSE_TO, response_to),
        (CXL_REJ_REASON, reason),
        (TEXT, text[:200]),
    ]


def business_reject(ref_msg_type: str, ref_id: str, reason: str, text: str) -> Fields:
    return [(REF_MSG_TYPE, ref_msg_type), (BUSINESS_REJECT_REF_ID, ref_id or "NONE"),
            (BUSINESS_REJECT_REASON, reason), (TEXT, text[:200])]  # fmt: skip


def utc_timestamp(ms: int) -> str:
    """FIX UTCTimestamp with milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y%m%d-%H:%M:%S.") + f"{ms % 1000:03d}"
