"""Binance's error shape ``{"code": <negative int>, "msg": str}`` with its HTTP statuses and codes, and the one table
that turns the engine's and the sequencer's refusals into them (docs/api.md lists every code Mercury sends).

Messages are Binance's own where clients match on them: ccxt maps some errors by the exact ``msg`` (insufficient
balance, post-only would take) and others by ``code`` (../shared/binance-subset.md section 3).
"""

from __future__ import annotations

from wire.enums import AckStatus
from wire.reasons import RejectReason


class ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str, retry_after: int | None = None) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.retry_after = status, code, msg, retry_after
        self.data: dict[str, object] | None = None  # cancel-replace's details of what happened
        self.retry_at: int | None = None  # a limit's refusal: when the client may try again (ms since the epoch)

    def body(self) -> dict[str, object]:
        if self.data is not None:
            return {"code": self.code, "msg": self.msg, "data": self.data}
        return {"code": self.code, "msg": self.msg}

    def answer(self, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
        """The HTTP answer (status, body) of a gateway or a feed, with Retry-After added to ``headers``."""
        if self.retry_after:
            headers["Retry-After"] = str(self.retry_after)
        return self.status, self.body()


def bad(code: int, msg: str) -> ApiError:
    return ApiError(400, code, msg)


def limited(status: int, code: int, msg: str, retry_at_ms: int, now_ms: int) -> ApiError:
    """A rate limit's or a ban's refusal (429, 418): Retry-After in whole seconds for REST, and the exact time for
    the WebSocket API's ``data.retryAfter``."""
    error = ApiError(status, code, msg, max(1, -(-(retry_at_ms - now_ms) // 1000)))
    error.retry_at = retry_at_ms
    return error


# --- request shape ----------------------------------------------------------------------------------------------


def mandatory(name: str) -> ApiError:
    return bad(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal(name: str, why: str) -> ApiError:
    return bad(-1100, f"Illegal characters found in parameter '{name}'; {why}.")


def not_required(name: str) -> ApiError:
    return bad(-1106, f"Parameter '{name}' sent when not required.")


def duplicate_param(name: str) -> ApiError:
    return bad(-1101, f"Duplicate values for parameter '{name}'.")


BAD_COMBINATION = bad(-1128, "Combination of optional parameters invalid.")
INVALID_SYMBOL = bad(-1121, "Invalid symbol.")
INVALID_SIDE = bad(-1117, "Invalid side.")
INVALID_TYPE = bad(-1116, "Invalid orderType.")
INVALID_TIF = bad(-1115, "Invalid timeInForce.")
INVALID_RESP_TYPE = bad(-1106, "Parameter 'newOrderRespType' sent with a value this endpoint does not know.")
NOT_FOUND = ApiError(404, -1000, "Unknown endpoint.")

# --- authentication ---------------------------------------------------------------------------------------------

KEY_FORMAT = ApiError(401, -2014, "API-key format invalid.")
KEY_REFUSED = ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
BAD_SIGNATURE = bad(-1022, "Signature for this request is not valid.")
OUTSIDE_WINDOW = bad(-1021, "Timestamp for this request is outside of the recvWindow.")
REPLAYED = bad(-1022, "Signature for this request was already used: a replayed order request is refused.")
AHEAD_OF_SERVER = bad(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
RECV_WINDOW_TOO_BIG = bad(-1131, "recvWindow must be less than 60000")

# --- orders -----------------------------------------------------------------------------------------------------

UNKNOWN_ORDER_CANCEL = bad(-2011, "Unknown order sent.")
UNKNOWN_ORDER_QUERY = bad(-2013, "Order does not exist.")
INSUFFICIENT = bad(-2010, "Account has insufficient balance for requested action.")
WOULD_TAKE = bad(-2010, "Order would immediately match and take.")
ICEBERG_NOT_SUPPORTED = bad(-2010, "Iceberg orders are not supported for this symbol.")
STP_NOT_ALLOWED = bad(-1013, "This symbol does not allow the specified self-trade prevention mode.")


def filter_failure(name: str) -> ApiError:
    return bad(-1013, f"Filter failure: {name}")


# --- the pipeline -----------------------------------------------------------------------------------------------

OVERLOADED = ApiError(503, -1008, "Server is currently overloaded with other requests. Please try again later.", 1)
UNKNOWN_OUTCOME = ApiError(
    503, -1007, "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
)
INTERNAL = ApiError(500, -1000, "An unknown error occurred while processing the request.")
# a store the gateway needs for the request (Redis for the signature claim, PostgreSQL for the API key) did not
# answer: nothing was sent on, so the client may simply try again
UNAVAILABLE = ApiError(503, -1001, "Internal error; unable to process your request. Please try again.", 1)


def refused_ack(status: AckStatus, detail: str) -> ApiError:
    if status is AckStatus.BUSY:
        return OVERLOADED
    if status is AckStatus.UNAVAILABLE:
        return UNAVAILABLE
    return ApiError(400, -1000, f"The request could not be journaled: {detail}")


def rejected(reason: RejectReason, detail: str, market: bool = False, cancel: bool = False) -> ApiError:
    """The engine's refusal of an order (or, with ``cancel``, of a cancel or replace) as Binance answers it."""
    r = RejectReason
    if reason is r.UNKNOWN_ORDER:
        return UNKNOWN_ORDER_CANCEL
    if reason is r.INSUFFICIENT_BALANCE:
        return INSUFFICIENT
    if reason is r.POST_ONLY_WOULD_TAKE:
        return WOULD_TAKE
    if reason is r.UNKNOWN_SYMBOL:
        return INVALID_SYMBOL
    if reason in (r.PRICE_NOT_POSITIVE, r.PRICE_OFF_TICK, r.PRICE_TOO_HIGH):
        return filter_failure("PRICE_FILTER")
    if reason is r.PRICE_OUT_OF_BAND:
        return filter_failure("PERCENT_PRICE_BY_SIDE")
    if reason in (r.QTY_NOT_POSITIVE, r.QTY_BELOW_MIN, r.QTY_ABOVE_MAX):
        return filter_failure("MARKET_LOT_SIZE" if market else "LOT_SIZE")
    if reason is r.NOTIONAL_BELOW_MIN:
        return filter_failure("NOTIONAL")
    if reason is r.DUPLICATE_CLIENT_ORDER_ID:
        return bad(-2010, "Duplicate order sent.")
    if reason is r.INVALID_ORDER_TYPE:
        return bad(-1116, f"Invalid orderType: {detail}")
    if reason is r.REPLACE_NO_CHANGE:
        return bad(-2021 if cancel else -2010, "Order cancel-replace failed: the new order changes nothing.")
    if reason is r.UNKNOWN_ACCOUNT:
        return ApiError(400, -2010, "This action is disabled on this account.")
    return bad(-2010 if not cancel else -2011, f"{reason.name}: {detail}")
