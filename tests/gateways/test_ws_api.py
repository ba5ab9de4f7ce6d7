"""The WebSocket API with a plain websockets client: signed requests (sorted-params signature), trading on the
same code as REST, the user data stream's events in engine order, and what bad input gets."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import asyncpg
import pytest
import websockets
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateways.binance.auth import KEY_TTL
from gateways.binance.params import ws_payload
from gateways.http.outbox import QUEUE
from persistence.apikeys import revoke
from tests.gateways.conftest import Exchange, ed25519_key, new_account_key
from tests.gateways.test_rest import send, signed
from wire.commands import Command
from wire.enums import Side
from wire.venue import DEFAULT_VENUE, load_venue


def signed_params(exchange: Exchange, account: int, **params: Any) -> dict[str, Any]:
    key, secret = exchange.keys[account]
    values: dict[str, Any] = {"apiKey": key, "timestamp": time.time_ns() // 1_000_000, **params}
    values["signature"] = hmac.new(secret.encode(), ws_payload(values).encode(), hashlib.sha256).hexdigest()
    return values


def ed25519_params(key: str, private: Ed25519PrivateKey, **params: Any) -> dict[str, Any]:
    """Params signed with an Ed25519 key as the WebSocket API takes them (sorted, base64 signature)."""
    values: dict[str, Any] = {"apiKey": key, "timestamp": time.time_ns() // 1_000_000, **params}
    values["signature"] = base64.b64encode(private.sign(ws_payload(values).encode())).decode()
    return values


EVENTS: list[dict[str, Any]] = []  # user data events that arrived while a call waited for its reply


async def call(ws: Any, request_id: str, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    await ws.send(json.dumps({"id": request_id, "method": method, "params": params or {}}))
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message.get("id") == request_id:
            return message
        if "event" in message:
            EVENTS.append(message)


@pytest.mark.timeout(60)
def test_trading_and_the_user_data_stream_over_the_websocket_api(exchange: Exchange) -> None:
    EVENTS.clear()  # another module's test may have called through `call` before

    async def scenario() -> list[dict[str, Any]]:
        url = exchange.url.replace("http://", "ws://") + "/ws-api/v3"
        async with websockets.connect(url) as ws:
            pong = await call(ws, "0", "ping")
            assert (pong["status"], pong["result"]) == (200, {})
            assert pong["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
            sub = await call(ws, "1", "userDataStream.subscribe.signature", signed_params(exchange, 1))
            assert (sub["status"], sub["result"]) == (200, {"subscriptionId": 0})
            placed = await call(ws, "2", "order.place", signed_params(
                exchange, 1, symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.02",
                price="1000", newClientOrderId="ws-1", returnRateLimits=False))  # fmt: skip
            assert placed["status"] == 200 and placed["result"]["status"] == "NEW", placed
            assert "rateLimits" not in placed  # the request said returnRateLimits false
            async with websockets.connect(url) as other:
                bought = await call(other, "1", "order.place", signed_params(
                    exchange, 2, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.005"))  # fmt: skip
                assert bought["result"]["status"] == "FILLED", bought
            canceled = await call(ws, "3", "order.cancel", signed_params(
                exchange, 1, symbol="BTCUSDT", origClientOrderId="ws-1"))  # fmt: skip
            assert canceled["result"]["status"] == "CANCELED"
            while len(EVENTS) < 6:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if "event" in message:
                    EVENTS.append(message)
            assert {m["subscriptionId"] for m in EVENTS} == {0}
            return [m["event"] for m in EVENTS]

    events = asyncio.run(scenario())
    kinds = [(e["e"], e.get("x"), e.get("X")) for e in events]
    assert kinds == [
        ("executionReport", "NEW", "NEW"),
        ("outboundAccountPosition", None, None),  # the sell locked BTC
        ("executionReport", "TRADE", "PARTIALLY_FILLED"),
        ("outboundAccountPosition", None, None),  # BTC spent from the lock, USDT received
        ("executionReport", "CANCELED", "CANCELED"),
        ("outboundAccountPosition", None, None),  # the rest of the lock released
    ]
    trade = events[2]
    assert (trade["c"], trade["l"], trade["z"], trade["L"], trade["m"], trade["N"]) == (
        "ws-1", "0.00500000", "0.00500000", "1000.00000000", True, "USDT")  # fmt: skip
    assert {b["a"] for b in events[3]["B"]} == {"BTC", "USDT"}


@pytest.mark.timeout(30)
def test_bad_websocket_requests_get_error_replies_and_the_socket_stays_open(exchange: Exchange) -> None:
    async def scenario() -> None:
        url = exchange.url.replace("http://", "ws://") + "/ws-api/v3"
        async with websockets.connect(url) as ws:
            await ws.send("not json")
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert (reply["id"], reply["status"], reply["error"]["code"]) == (None, 400, -1100)
            assert (await call(ws, "a", "no.such.method"))["error"]["code"] == -1000
            forged = {**signed_params(exchange, 1), "signature": "0" * 64}
            reply = await call(ws, "b", "userDataStream.subscribe.signature", forged)
            assert (reply["status"], reply["error"]["code"]) == (400, -1022)
            reply = await call(ws, "c", "order.cancel", signed_params(exchange, 1, symbol="BTCUSDT", orderId=424242))
            assert (reply["status"], reply["error"]["code"]) == (400, -2011)
            reply = await call(ws, "d", "order.place", signed_params(exchange, 1, symbol="BTCUSDT", side="SELL"))
            assert (reply["status"], reply["error"]["code"]) == (400, -1102)
            assert (await call(ws, "e", "time"))["status"] == 200  # still serving
            info = await call(ws, "h", "exchangeInfo", {"symbols": ["ETHUSDT"]})
            assert [s["symbol"] for s in info["result"]["symbols"]] == ["ETHUSDT"] and info["result"]["rateLimits"]
            assert (await call(ws, "i", "exchangeInfo", {"symbol": "NOPE"}))["error"]["code"] == -1121
            reply = await call(ws, "f", "account.commission", signed_params(exchange, 1, symbol="NOPE"))
            assert (reply["status"], reply["error"]["code"]) == (400, -1121)
            reply = await call(ws, "g", "account.commission", signed_params(exchange, 1, symbol="BTCUSDT"))
            assert reply["result"]["standardCommission"]["taker"] == "0.00100000", reply

    asyncio.run(scenario())


@pytest.mark.timeout(90)
def test_replies_report_the_rate_limits_counted_as_binances_do(exchange: Exchange) -> None:
    """Each reply's ``rateLimits``: the request weight (by parameters where Binance weighs so), and for a new order
    the account's order counts; none on a connection opened with returnRateLimits=false."""

    def counts(reply: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int]]:
        return {(r["rateLimitType"], r["interval"]): (r["limit"], r["count"]) for r in reply["rateLimits"]}

    async def scenario() -> None:
        url = exchange.url.replace("http://", "ws://") + "/ws-api/v3"
        async with websockets.connect(url) as ws:
            if time.time() % 60 > 50:  # every request below in one minute's window
                await asyncio.sleep(60.1 - time.time() % 60)
            spent = []
            for n, (method, params) in enumerate([
                ("ping", {}),
                ("openOrders.status", signed_params(exchange, 3, symbol="BTCUSDT")),
                ("openOrders.status", signed_params(exchange, 3)),
                ("myTrades", signed_params(exchange, 3, symbol="BTCUSDT", orderId=1)),
                ("myPreventedMatches", signed_params(exchange, 3, symbol="BTCUSDT", preventedMatchId=1)),
                ("exchangeInfo", {}),
            ]):  # fmt: skip
                reply = await call(ws, str(n), method, params)
                assert reply["status"] == 200, reply
                spent.append(counts(reply)[("REQUEST_WEIGHT", "MINUTE")])
            assert {limit for limit, _ in spent} == {6000}
            used = [count for _, count in spent]
            assert [b - a for a, b in itertools.pairwise(used)] == [6, 80, 5, 2, 20]
            refused = await call(ws, "x", "order.cancel", signed_params(exchange, 3, symbol="BTCUSDT", orderId=4242))
            assert refused["error"]["code"] == -2011 and counts(refused)[("REQUEST_WEIGHT", "MINUTE")][1] > used[-1]
            placed = await call(ws, "o", "order.place", signed_params(
                exchange, 3, symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.01",
                price="1050"))  # fmt: skip
            order_counts = counts(placed)
            assert order_counts[("ORDERS", "SECOND")][0] == 100 and order_counts[("ORDERS", "SECOND")][1] >= 1
            assert order_counts[("ORDERS", "DAY")][1] >= 1
            assert placed["status"] == 200, placed
            queried = await call(ws, "q", "order.status", signed_params(
                exchange, 3, symbol="BTCUSDT", orderId=placed["result"]["orderId"]))  # fmt: skip
            assert queried["status"] == 200 and ("ORDERS", "SECOND") not in counts(queried)  # no new order
            await call(ws, "c", "openOrders.cancelAll", signed_params(exchange, 3, symbol="BTCUSDT"))
        async with websockets.connect(url + "?returnRateLimits=false") as quiet:
            assert await call(quiet, "0", "ping") == {"id": "0", "status": 200, "result": {}}
            status = await call(quiet, "1", "session.status")
            assert status["result"]["returnRateLimits"] is False and "rateLimits" not in status

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_the_legacy_listen_key_stream(exchange: Exchange) -> None:
    key, _ = exchange.keys[3]
    status, created = send(exchange, "POST", "/api/v3/userDataStream", key=key)
    assert status == 200 and len(created["listenKey"]) == 60
    listen_key = created["listenKey"]
    assert send(exchange, "PUT", "/api/v3/userDataStream", body=f"listenKey={listen_key}", key=key) == (200, {})
    other, _ = exchange.keys[2]
    status, body = send(exchange, "PUT", "/api/v3/userDataStream", body=f"listenKey={listen_key}", key=other)
    assert (status, body["code"]) == (400, -1125)  # another account's key
    assert send(exchange, "POST", "/api/v3/userDataStream")[1]["code"] == -2014  # no API key

    async def scenario() -> list[dict[str, Any]]:
        base = exchange.url.replace("http://", "ws://")
        async with websockets.connect(f"{base}/ws/{listen_key}") as ws:
            await asyncio.sleep(0.3)
            status, order = signed(exchange, "POST", "/api/v3/order", {
                "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01",
                "price": "950"}, account=3)  # fmt: skip
            assert status == 200, order
            return [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]

    events = asyncio.run(scenario())
    assert [e["e"] for e in events] == ["executionReport", "outboundAccountPosition"]
    assert events[0]["x"] == "NEW" and events[0]["p"] == "950.00000000"
    assert send(exchange, "DELETE", "/api/v3/userDataStream", query=f"listenKey={listen_key}", key=key) == (200, {})

    async def closed() -> dict[str, Any]:
        base = exchange.url.replace("http://", "ws://")
        async with websockets.connect(f"{base}/ws/{listen_key}") as ws:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
            return message

    assert asyncio.run(closed())["e"] == "listenKeyExpired"


@pytest.mark.timeout(60)
def test_a_session_logged_on_with_an_ed25519_key_trades_without_signing_each_request(exchange: Exchange) -> None:
    """session.logon (Ed25519 only, as Binance's): later requests omit apiKey and signature (timestamp still
    checked), userDataStream.subscribe needs no params; an HMAC key cannot log on; after session.logout the same
    unsigned request is refused."""
    key, private = ed25519_key(exchange, 3, "ws-session")

    def ed_signed(**params: Any) -> dict[str, Any]:
        return ed25519_params(key, private, **params)

    def now() -> int:
        return time.time_ns() // 1_000_000

    async def scenario() -> None:
        url = exchange.url.replace("http://", "ws://") + "/ws-api/v3"
        async with websockets.connect(url) as ws:
            status = (await call(ws, "s0", "session.status"))["result"]
            assert (status["apiKey"], status["authorizedSince"], status["userDataStream"]) == (None, None, False)
            assert (await call(ws, "s1", "userDataStream.subscribe"))["error"]["code"] == -1002  # not logged on
            hmac_logon = await call(ws, "s2", "session.logon", signed_params(exchange, 1))
            assert (hmac_logon["status"], hmac_logon["error"]["code"]) == (400, -1002), hmac_logon
            forged = {**ed_signed(), "signature": base64.b64encode(b"x" * 64).decode()}
            assert (await call(ws, "s3", "session.logon", forged))["error"]["code"] == -1022

            logon = await call(ws, "s4", "session.logon", ed_signed())
            assert logon["status"] == 200 and logon["result"]["apiKey"] == key, logon
            sub = await call(ws, "s5", "userDataStream.subscribe")
            assert sub["result"] == {"subscriptionId": 0}
            assert (await call(ws, "s6", "session.status"))["result"]["userDataStream"] is True
            placed = await call(
                ws,
                "s7",
                "order.place",
                {
                    "symbol": "BTCUSDT",
                    "side": "SELL",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.01",
                    "price": "1000",
                    "newClientOrderId": "session-1",
                    "selfTradePreventionMode": "EXPIRE_MAKER",
                    "timestamp": now(),
                },
            )
            assert placed["status"] == 200 and placed["result"]["status"] == "NEW", placed
            stale = await call(ws, "s8", "openOrders.status", {"symbol": "BTCUSDT", "timestamp": now() - 120_000})
            assert stale["error"]["code"] == -1021  # the timestamp is still checked
            untimed = await call(ws, "s9", "openOrders.status", {"symbol": "BTCUSDT"})
            assert untimed["error"]["code"] == -1102
            mine = await call(ws, "s10", "openOrders.status", {"symbol": "BTCUSDT", "timestamp": now()})
            assert "session-1" in [o["clientOrderId"] for o in mine["result"]]  # (account 3 has others too)
            canceled = await call(ws, "s11", "order.cancel", {"symbol": "BTCUSDT", "origClientOrderId": "session-1",
                                                              "timestamp": now()})  # fmt: skip
            assert canceled["result"]["status"] == "CANCELED"
            while not any(m["event"].get("x") == "CANCELED" for m in EVENTS if m["subscriptionId"] == 0):
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if "event" in message:
                    EVENTS.append(message)
            reports = [m["event"] for m in EVENTS if m["event"]["e"] == "executionReport"][-2:]
            assert [(r["c"], r["x"], r["V"]) for r in reports] == [("session-1", "NEW", "EXPIRE_MAKER"),
                                                                 ("session-1", "CANCELED", "EXPIRE_MAKER")]  # fmt: skip

            second = await call(ws, "u0", "userDataStream.subscribe.signature", signed_params(exchange, 2))
            assert second["result"] == {"subscriptionId": 1}
            listed = await call(ws, "u1", "session.subscriptions")
            assert listed["result"] == [{"subscriptionId": 0}, {"subscriptionId": 1}]
            assert (await call(ws, "u2", "userDataStream.unsubscribe", {"subscriptionId": 7}))["error"]["code"] == -1100
            assert (await call(ws, "u3", "userDataStream.unsubscribe", {"subscriptionId": 0}))["result"] == {}
            assert (await call(ws, "u4", "session.subscriptions"))["result"] == [{"subscriptionId": 1}]
            assert (await call(ws, "u5", "userDataStream.unsubscribe"))["result"] == {}  # no id: all of them
            assert (await call(ws, "u6", "session.status"))["result"]["userDataStream"] is False
            EVENTS.clear()
            again = await call(ws, "u7", "order.place", {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT",
                                                         "timeInForce": "IOC", "quantity": "0.01", "price": "1000",
                                                         "timestamp": now()})  # fmt: skip
            assert again["status"] == 200, again  # (whatever it did: it made events of account 3)
            with pytest.raises(TimeoutError):  # unsubscribed: the order's events are not sent here any more
                await asyncio.wait_for(ws.recv(), 1)
            assert EVENTS == []

            out = await call(ws, "s12", "session.logout")
            assert (out["result"]["apiKey"], out["result"]["authorizedSince"]) == (None, None)
            refused = await call(ws, "s13", "openOrders.status", {"symbol": "BTCUSDT", "timestamp": now()})
            assert refused["error"]["code"] == -2014  # no session: apiKey needed again

    EVENTS.clear()
    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_a_revoked_key_stops_working_within_the_key_cache_time(exchange: Exchange) -> None:
    """Revoked in PostgreSQL (persistence.apikeys.revoke), a key is refused (-2015) within KEY_TTL, in signed REST
    requests and on a WebSocket API session it logged on."""
    key, private = ed25519_key(exchange, 3, "to-revoke")

    def ed_signed(**params: Any) -> dict[str, Any]:
        return ed25519_params(key, private, **params)

    def rest_account() -> int:
        payload = urlencode({"timestamp": time.time_ns() // 1_000_000})
        signature = base64.b64encode(private.sign(payload.encode())).decode()
        status, _ = send(exchange, "GET", "/api/v3/account", query=f"{payload}&{urlencode({'signature': signature})}",
                         key=key)  # fmt: skip
        return status

    async def revoke_it() -> None:
        conn = await asyncpg.connect(exchange.pg_url)
        try:
            await revoke(conn, key)
        finally:
            await conn.close()

    async def scenario() -> None:
        url = exchange.url.replace("http://", "ws://") + "/ws-api/v3"
        async with websockets.connect(url) as ws:
            assert (await call(ws, "r0", "session.logon", ed_signed()))["status"] == 200
            assert rest_account() == 200
            await revoke_it()
            deadline = time.monotonic() + KEY_TTL + 2
            while True:
                reply = await call(ws, "r1", "account.status", {"timestamp": time.time_ns() // 1_000_000})
                if reply["status"] != 200 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert (reply["status"], reply["error"]["code"]) == (401, -2015), reply
            assert rest_account() == 401

    asyncio.run(scenario())


def raw_websocket(url: str, path: str) -> socket.socket:
    """A WebSocket client that reads nothing it is not asked to: a raw socket, so that what the server sends piles up
    on the server's side."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    # a fixed receive buffer (set before connecting, so the window scale fits it): the kernel holds at most that much
    # of what the server sends while nothing is read, and reading it later is not slowed by a tiny window
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())  # fmt: skip
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert b" 101 " in response, response
    return sock


def send_text(sock: socket.socket, text: str) -> None:
    """One masked text frame, as a client must send it (RFC 6455 5.3)."""
    payload, mask = text.encode(), os.urandom(4)
    n = len(payload)
    header = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def frames(sock: socket.socket) -> Iterator[tuple[int, bytes]]:
    """The server's frames (unmasked, unfragmented: what the gateway sends) as (opcode, payload), to the close."""
    buffer, at = bytearray(), 0

    def take(n: int) -> bytes:
        nonlocal buffer, at
        while len(buffer) - at < n:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            buffer = buffer[at:] + chunk  # read position kept, so taking a frame copies only that frame
            at = 0
        out = bytes(buffer[at : at + n])
        at += n
        return out

    while True:
        first, second = take(2)
        n = second & 0x7F
        if n == 126:
            n = int.from_bytes(take(2), "big")
        elif n == 127:
            n = int.from_bytes(take(8), "big")
        yield first & 0x0F, take(n)
        if first & 0x0F == 8:
            return


@pytest.mark.timeout(180)
@pytest.mark.parametrize("way", ["ws-api", "listenKey"])
def test_a_subscriber_that_stops_reading_is_told_and_dropped(exchange: Exchange, way: str) -> None:
    """More than QUEUE events unread: the subscription gets Binance's eventStreamTerminated (on the WebSocket API
    wrapped with its subscriptionId, with Mercury's reason), then the socket is closed 1008; the other connections
    are served meanwhile."""
    account = {"ws-api": 8, "listenKey": 9}[way]
    spec, venue = load_venue(DEFAULT_VENUE).spec("BTCUSDT"), exchange.venue
    key, private = new_account_key(exchange, account, 10**14, f"flood-{way}")
    client = venue.client(f"flood-orders-{way}")
    price, qty = spec.price_to_ticks("990"), spec.qty_to_lots("0.01")  # above the minimum notional
    if way == "ws-api":
        idle = raw_websocket(exchange.url, "/ws-api/v3")
        send_text(idle, json.dumps({"id": "s", "method": "userDataStream.subscribe.signature",
                                    "params": ed25519_params(key, private)}))  # fmt: skip
        idle.settimeout(10)
        opcode, reply = next(frames(idle))
        assert json.loads(reply)["result"] == {"subscriptionId": 0}, reply
    else:
        status, created = send(exchange, "POST", "/api/v3/userDataStream", key=key)
        assert status == 200, created
        idle = raw_websocket(exchange.url, f"/ws/{created['listenKey']}")
        idle.settimeout(10)
        time.sleep(0.5)  # the stream subscribes once the socket is accepted

    async def flood() -> None:
        async with websockets.connect(exchange.url.replace("http://", "ws://") + "/ws-api/v3") as busy:
            pairs = QUEUE  # each order: a report and a balance when placed, again when canceled
            for start in range(0, pairs, 500):
                cmds: list[Command] = []
                for _ in range(500):
                    cmds += [client.place(account, "BTCUSDT", Side.BUY, qty, price),
                             client.cancel_all(account, "BTCUSDT")]  # fmt: skip
                for cmd in cmds:
                    client.send(cmd)
                for _ in cmds:
                    client.recv_ack()
                assert (await call(busy, str(start), "ping"))["status"] == 200  # served meanwhile

    asyncio.run(flood())
    received = list(frames(idle))
    idle.close()
    opcode, close = received[-1]
    assert opcode == 8 and int.from_bytes(close[:2], "big") == 1008 and b"too slow" in close, close
    ended = json.loads(received[-2][1])
    if way == "ws-api":
        assert ended["subscriptionId"] == 0, ended
        ended = ended["event"]
    assert ended["e"] == "eventStreamTerminated" and ended["E"] > 0 and str(QUEUE) in ended["reason"], ended
    assert len(received) < 4 * QUEUE  # it ended before every event was sent
