"""Binance's WebSocket API at /ws-api/v3: requests ``{"id", "method", "params"}`` answered ``{"id", "status",
"result" | "error"}``, and the user data stream on the same socket (``userDataStream.subscribe.signature``, what
ccxt 4.5.90 uses for spot), events pushed as ``{"subscriptionId", "event"}``.

Signed methods carry ``apiKey``, ``timestamp``, ``signature`` (and ``recvWindow``) in their params; the signature
covers every other param sorted by name (gateways.binance.params.ws_payload). Trading methods run the same
operations as REST (``order.place`` is ``POST /api/v3/order``, ...). Unknown params are ignored, as ccxt sends some
(``postOnly``). Every reply carries ``rateLimits`` (the request weight and, for orders, the order counts, as Binance's
replies do) unless the connection was opened with ``?returnRateLimits=false`` or the request says
``returnRateLimits: false``.

Each connection has a bounded queue of events: a client that does not read them is told why and disconnected,
never allowed to hold the engine's events back (design note 4).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from gateways.binance import errors
from gateways.binance.auth import Caller, session_caller
from gateways.binance.errors import ApiError
from gateways.binance.limits import MY_PREVENTED_MATCHES, MY_TRADES, OPEN_ORDERS, Weight, spent
from gateways.binance.params import Params, ws_payload
from gateways.clock import now_ms
from gateways.http.outbox import TOO_SLOW, Outbox, terminated

if TYPE_CHECKING:
    from gateways.http.app import Gateway

log = logging.getLogger("mercury.gateway.wsapi")

MAX_MESSAGE = 64 * 1024

# method -> the gateway's operation (REST's signed handlers)
TRADING = {
    "order.place": "new_order",
    "order.test": "test_order",
    "order.cancel": "cancel_order",
    "order.status": "query_order",
    "order.cancelReplace": "cancel_replace",
    "openOrders.status": "open_orders",
    "openOrders.cancelAll": "cancel_all",
    "allOrders": "all_orders",
    "myTrades": "my_trades",
    "myPreventedMatches": "my_prevented_matches",
    "account.status": "account",
    "account.commission": "commission",
    "account.rateLimits.orders": "order_rate_limits",
}


WEIGHTS: dict[str, Weight] = {"exchangeInfo": 20, "session.logon": 2, "session.status": 2, "session.logout": 2,
                              "userDataStream.subscribe": 2, "userDataStream.subscribe.signature": 2,
                              "order.status": 4, "openOrders.status": OPEN_ORDERS, "allOrders": 20,
                              "myTrades": MY_TRADES, "myPreventedMatches": MY_PREVENTED_MATCHES,
                              "account.status": 20, "account.commission": 20,
                              "account.rateLimits.orders": 40}  # fmt: skip


class Connection:
    """One client socket: its subscriptions and its outgoing queue."""

    def __init__(self, ws: WebSocket, gateway: Gateway) -> None:
        self.ws = ws
        self.gateway = gateway
        self.outbox = Outbox()
        self.subscriptions: dict[int, int] = {}  # subscription id -> account
        self.next_subscription = 0
        self.connected_since = now_ms()
        self.session_key: str | None = None  # the key session.logon authenticated (Ed25519 only, as Binance's)
        self.authorized_since: int | None = None
        self.rate_limits = ws.query_params.get("returnRateLimits", "true").lower() != "false"

    def session_status(self) -> dict[str, object]:
        return {"apiKey": self.session_key, "authorizedSince": self.authorized_since,
                "connectedSince": self.connected_since, "returnRateLimits": self.rate_limits, "serverTime": now_ms(),
                "userDataStream": bool(self.subscriptions)}  # fmt: skip

    def push(self, account: int, payload: dict[str, Any]) -> None:
        for subscription, owner in self.subscriptions.items():
            if owner == account:
                self._send({"subscriptionId": subscription, "event": payload})

    def _send(self, message: dict[str, Any]) -> None:
        self.outbox.put(json.dumps(message, separators=(",", ":")))

    async def writer(self) -> None:
        while True:
            text = await self.outbox.get()
            if text is None:
                ended = terminated()  # on each subscription
                for subscription in self.subscriptions:
                    await self.ws.send_text(json.dumps({"subscriptionId": subscription, "event": ended}))
                await self.ws.close(code=1008, reason=f"too slow: {TOO_SLOW}")
                return
            await self.ws.send_text(text)

    def reply(self, request_id: object, result: object = None, error: ApiError | None = None,
              rate_limits: list[dict[str, object]] | None = None) -> None:  # fmt: skip
        message: dict[str, object] = {"id": request_id}
        if error is None:
            message.update(status=200, result=result)
        else:
            body = error.body()
            if error.retry_at is not None:  # Binance's WebSocket API says when, where REST has Retry-After
                body["data"] = {"serverTime": now_ms(), "retryAfter": error.retry_at}
            message.update(status=error.status, error=body)
        if rate_limits:
            message["rateLimits"] = rate_limits
        self._send(message)


async def endpoint(ws: WebSocket, gateway: Gateway) -> None:
    await ws.accept()
    conn = Connection(ws, gateway)
    writer = asyncio.create_task(conn.writer())
    assert gateway.live is not None
    try:
        while True:
            try:
                text = await ws.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                # RuntimeError (starlette's WebSocketDisconnected): the socket was closed from this side first, by
                # the writer dropping a slow client or by the server shutting down (seen on Ctrl-C in CI)
                break
            await handle(conn, text)
    except asyncio.CancelledError:
        # the server's shutdown cancels a connection whose request still waits on the sequencer, which is
        # stopping too (Ctrl-C stops every process at once): the connection ends here; left to propagate, uvicorn
        # logs the cancellation as an application error with a traceback (seen in CI: test_start)
        pass
    finally:
        for account in set(conn.subscriptions.values()):
            gateway.live.unsubscribe(account, conn)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer


async def handle(conn: Connection, text: str) -> None:
    request_id: object = None
    counts: dict[str, str] = {}  # what the request counted against the limits (REST's X-MBX-* headers)
    wanted = conn.rate_limits
    try:
        if len(text) > MAX_MESSAGE:
            raise errors.bad(-1100, "Message too large.")
        try:
            message = json.loads(text)
        except ValueError:
            raise errors.bad(-1100, "The message is not JSON.") from None
        if not isinstance(message, dict):
            raise errors.bad(-1100, "A request is a JSON object with id, method and params.")
        request_id = message.get("id")
        method = message.get("method")
        params = message.get("params") or {}
        if not isinstance(method, str) or not isinstance(params, dict):
            raise errors.bad(-1100, "A request is a JSON object with id, method and params.")
        wanted = wanted and params.get("returnRateLimits") not in (False, "false")
        result = await dispatch(conn, method, params, counts)
        conn.reply(request_id, result, rate_limits=_rate_limits(conn, counts, wanted))
    except ApiError as exc:
        conn.reply(request_id, error=exc, rate_limits=_rate_limits(conn, counts, wanted))
    except Exception:
        log.exception("WebSocket API request failed")
        conn.reply(request_id, error=errors.INTERNAL)


def _rate_limits(conn: Connection, counts: dict[str, str], wanted: bool) -> list[dict[str, object]] | None:
    return conn.gateway.limiter.limits.reported(counts) if wanted else None


async def dispatch(conn: Connection, method: str, params: dict[str, Any], counts: dict[str, str]) -> object:
    gateway = conn.gateway
    assert gateway.live is not None and gateway.keys is not None
    # the same request-weight budget per IP as REST (a 429 error reply past it); new orders count per account in
    # the operations themselves
    ip = conn.ws.client.host if conn.ws.client else ""
    gateway.limiter.request(ip, spent(WEIGHTS.get(method, 1), params), now_ms(), counts)
    if method == "ping":
        return {}
    if method == "time":
        return {"serverTime": now_ms()}
    if method == "exchangeInfo":
        return gateway.formats.exchange_info(now_ms(), Params.of_mapping(params, "").symbols())
    if method == "session.logon":
        caller = await _signed(conn, params)
        key = await gateway.keys.get(caller.key_id)
        if key is None or key.kind != "ED25519":
            raise SESSION_NEEDS_ED25519
        conn.session_key, conn.authorized_since = caller.key_id, now_ms()
        return conn.session_status()
    if method == "session.status":
        return conn.session_status()
    if method == "session.logout":
        conn.session_key = conn.authorized_since = None
        return conn.session_status()
    if method in ("userDataStream.subscribe.signature", "userDataStream.subscribe"):
        if method == "userDataStream.subscribe":  # the session's key; no params, no timestamp (USER_STREAM)
            caller = await session_caller(gateway.keys, _session_key(conn), Params("", ""), now_ms(), timed=False)
        else:
            caller = await _signed(conn, params)
        new_id = conn.next_subscription
        conn.next_subscription += 1
        conn.subscriptions[new_id] = caller.account
        gateway.live.subscribe(caller.account, conn)
        return {"subscriptionId": new_id}
    if method == "userDataStream.unsubscribe":
        wanted = params.get("subscriptionId")
        if wanted is None:  # every subscription of this connection, as Binance's does without an id
            ended = list(conn.subscriptions)
        elif isinstance(wanted, int) and not isinstance(wanted, bool) and wanted in conn.subscriptions:
            ended = [wanted]
        else:
            raise errors.bad(-1100, "No such subscription on this connection.")
        for subscription in ended:
            account = conn.subscriptions.pop(subscription)
            if account not in conn.subscriptions.values():
                gateway.live.unsubscribe(account, conn)
        return {}
    if method == "session.subscriptions":
        return [{"subscriptionId": n} for n in conn.subscriptions]
    operation = TRADING.get(method)
    if operation is None:
        raise errors.bad(-1000, f"Unknown method '{method}'.")
    if conn.session_key is not None and "apiKey" not in params and "signature" not in params:
        # a logged-on session: the connection is the authentication, so there is no signature to replay
        caller = await session_caller(gateway.keys, conn.session_key, Params.of_mapping(params, ""), now_ms())
    else:
        caller = await _signed(conn, params, operation)
    op: Callable[[Caller, Params, dict[str, str]], Awaitable[Any]] = getattr(gateway, operation)
    return await op(caller, Params.of_mapping(params, ws_payload(params)), counts)


SESSION_NEEDS_ED25519 = errors.bad(-1002, "session.logon takes Ed25519 keys only, as Binance's does; sign each request "
                                   "with an HMAC key instead.")  # fmt: skip
NOT_LOGGED_ON = errors.bad(-1002, "You are not authorized to execute this request: log on first (session.logon), or "
                           "use userDataStream.subscribe.signature.")  # fmt: skip


def _session_key(conn: Connection) -> str:
    if conn.session_key is None:
        raise NOT_LOGGED_ON
    return conn.session_key


async def _signed(conn: Connection, values: dict[str, Any], operation: str = "") -> Caller:
    params = Params.of_mapping(values, ws_payload(values))
    return await conn.gateway.authorize(params.get("apiKey"), params, operation)
