"""The market-data WebSocket server, as Binance's: raw streams at ``/ws/<stream>``, ``/ws/<anything else>`` (ccxt's
``/ws/0``, ``/ws/1``...) starting empty, combined streams at ``/stream?streams=a/b``, and the live requests
SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY and GET_PROPERTY (``combined``), each answered with its
``id`` before any event of the streams it adds.

Errors are Binance's frames ``{"error": {"code": c, "msg": m}, "id": id}``: code 0 unknown property, 1 a value of
the wrong type, 2 an invalid request (unknown method, bad or unknown stream, too many streams), 3 invalid JSON. A
client past its message rate is answered so and disconnected (close code 1008), as Binance does.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from feeds.hub import Client, Hub
from feeds.streams import BadStream, Stream, parse

log = logging.getLogger("mercury.feed.ws")

MAX_STREAMS = 1_024  # per connection (Binance's)
MESSAGE_RATE = 10.0  # incoming messages per second a connection may send on average...
MESSAGE_BURST = 20.0  # ... with bursts up to this many
MAX_ID_LENGTH = 64
KERNEL_SEND_BUFFER = 128 * 1024  # bytes
HTTP_CODES = {HTTPStatus.BAD_REQUEST: -1100, HTTPStatus.NOT_FOUND: -1000, HTTPStatus.SERVICE_UNAVAILABLE: -1003}
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


class Refused(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def _streams_of(path: str, symbols: frozenset[str]) -> tuple[bool, list[Stream]] | str:
    """(combined, streams) for a connection's path, or why it is refused."""
    url = urlsplit(path)
    if url.path == "/stream":
        names = [n for text in parse_qs(url.query).get("streams", []) for n in text.split("/") if n]
        combined = True
    elif url.path == "/ws" or url.path.startswith("/ws/"):
        tail = url.path[4:]
        # ccxt connects to /ws/<slot number> and subscribes afterwards: only what looks like a stream is one
        names = [n for n in tail.split("/") if n] if ("@" in tail or tail.startswith("!")) else []
        combined = False
    else:
        return "unknown path: streams are at /ws/<stream> and /stream?streams=<a>/<b>"
    if len(names) > MAX_STREAMS:
        return f"too many streams (at most {MAX_STREAMS} per connection)"
    try:
        return combined, [parse(n, symbols) for n in names]
    except BadStream as exc:
        return str(exc)


class StreamServer:
    def __init__(self, hub: Hub, ready: Callable[[], bool], max_clients: int) -> None:
        self.hub = hub
        self.ready = ready
        self.max_clients = max_clients
        self.symbols = frozenset(hub.market.symbols)

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse before the upgrade what can be refused: a bad path or stream, a feed not ready or full."""
        if not self.ready():
            return _http_error(HTTPStatus.SERVICE_UNAVAILABLE, "the feed is still loading its state; retry shortly")
        if len(self.hub.clients) >= self.max_clients:
            return _http_error(HTTPStatus.SERVICE_UNAVAILABLE, "this feed serves no more connections")
        found = _streams_of(request.path, self.symbols)
        if isinstance(found, str):
            status = HTTPStatus.NOT_FOUND if found.startswith("unknown path") else HTTPStatus.BAD_REQUEST
            return _http_error(status, found)
        return None

    async def handle(self, ws: ServerConnection) -> None:
        found = _streams_of(ws.request.path if ws.request else "", self.symbols)
        if isinstance(found, str):  # process_request already refused it
            return
        combined, streams = found
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            # the kernel's share of a client's queue, bounded too: autotuned, it could hold megabytes per client
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_SEND_BUFFER)
        client = Client(ws, combined)
        self.hub.add(client)
        tokens, last = MESSAGE_BURST, time.monotonic()
        try:
            for stream in streams:
                self.hub.subscribe(client, stream)
            async for message in ws:
                now = time.monotonic()
                tokens = min(MESSAGE_BURST, tokens + (now - last) * MESSAGE_RATE)
                last = now
                if tokens < 1:
                    await ws.send(_error(None, 2, f"Too many requests: at most {MESSAGE_RATE:g} messages a second"))
                    await ws.close(1008, "too many messages")
                    return
                tokens -= 1
                await self._request(client, message)
        except ConnectionClosed:
            pass
        finally:
            self.hub.remove(client)

    async def _request(self, client: Client, message: str | bytes) -> None:
        ws = client.ws
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            await ws.send(_error(None, 3, f"Invalid JSON: {exc}"))
            return
        rid = request.get("id") if isinstance(request, dict) else None
        try:
            if not isinstance(request, dict):
                raise Refused(3, "Invalid JSON: a request is a JSON object")
            if rid is not None and not ((isinstance(rid, int) and not isinstance(rid, bool))
                                        or (isinstance(rid, str) and len(rid) <= MAX_ID_LENGTH)):  # fmt: skip
                rid = None
                raise Refused(1, f"Invalid value type: id is an integer, a string of at most {MAX_ID_LENGTH} or null")
            unknown = set(request) - {"method", "params", "id"}
            if unknown:
                raise Refused(0, f"Unknown property: {sorted(unknown)[0]}")
            method = request.get("method")
            if method not in METHODS:
                raise Refused(2, f"Invalid request: unknown method {method!r}, expected one of {', '.join(METHODS)}")
            params = request.get("params", [])
            if not isinstance(params, list):
                raise Refused(1, "Invalid value type: params is an array")
            result = self._apply(client, method, params)
        except Refused as exc:
            await ws.send(_error(rid, exc.code, exc.msg))
            return
        await ws.send(orjson.dumps({"result": result, "id": rid}).decode())
        if method == "SUBSCRIBE":
            # only now: the answer goes out before any event of these streams (clients drop events before it)
            for stream in self._parsed(params):
                self.hub.subscribe(client, stream)

    def _parsed(self, params: list[Any]) -> list[Stream]:
        try:
            return [parse(name, self.symbols) for name in params]
        except BadStream as exc:
            raise Refused(2, f"Invalid request: {exc}") from None

    def _apply(self, client: Client, method: str, params: list[Any]) -> Any:
        if method == "SUBSCRIBE":
            streams = self._parsed(params)
            new = {s.name for s in streams} - set(client.streams)
            if len(client.streams) + len(new) > MAX_STREAMS:
                raise Refused(2, f"Invalid request: too many streams (at most {MAX_STREAMS} per connection)")
            return None
        if method == "UNSUBSCRIBE":
            for name in params:
                if not isinstance(name, str):
                    raise Refused(1, "Invalid value type: stream names are strings")
            for name in params:
                self.hub.unsubscribe(client, name)
            return None
        if method == "LIST_SUBSCRIPTIONS":
            return list(client.streams)
        if not params or params[0] != "combined":
            raise Refused(0, f"Unknown property: {params[0] if params else None!r}")
        if method == "GET_PROPERTY":
            return client.combined
        if len(params) != 2 or not isinstance(params[1], bool):
            raise Refused(1, "Invalid value type: expected Boolean")
        client.combined = params[1]
        return None


def _error(rid: Any, code: int, msg: str) -> str:
    return orjson.dumps({"error": {"code": code, "msg": msg}, "id": rid}).decode()


def _http_error(status: HTTPStatus, msg: str) -> Response:
    body = orjson.dumps({"code": HTTP_CODES[status], "msg": msg})
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    if status == HTTPStatus.SERVICE_UNAVAILABLE:
        headers["Retry-After"] = "1"
    return Response(status.value, status.phrase, headers, body)
