"""Connections: a stalled client is told why and dropped without slowing the others; each bad request, path or REST
call gets its documented error; a client past its message rate is disconnected."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateways.binance.limits import Limits
from tests.feeds.conftest import Feed, Flow, engine_events, feed_service, trades_of
from wire.config import Settings


def stalled_client(ws_url: str, streams: list[str]) -> socket.socket:
    """A client that subscribes and then never reads: a tiny receive buffer, so the feed's queue fills fast."""
    host, port = ws_url.removeprefix("ws://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (f"GET /stream?streams={'/'.join(streams)} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
    sock.sendall(handshake.encode())
    assert b" 101 " in sock.recv(1024)
    return sock


@pytest.mark.timeout(120)
def test_a_stalled_client_is_dropped_and_the_others_get_every_trade(feed: Feed) -> None:
    feed.service.stop()
    service, _, ws = feed_service(feed.venue, feed.mongo_url, "small-queue-feed")
    service.env["MERCURY_FEED_MAX_QUEUE"] = "65536"
    service.start()
    flow = Flow(feed.venue, seed=9)
    heavy = ["btcusdt@depth@0ms", "btcusdt@depth20@100ms", "btcusdt@trade", "btcusdt@aggTrade", "btcusdt@kline_1s"]
    stalled = stalled_client(ws, heavy)

    async def healthy() -> list[int]:
        ids: list[int] = []
        async with connect(f"{ws}/ws/btcusdt@trade", max_queue=None) as conn:
            deadline = time.monotonic() + 60
            while "dropping client" not in service.log() and time.monotonic() < deadline:
                await asyncio.to_thread(flow.step, 200)
                while True:
                    try:
                        ids.append(json.loads(await asyncio.wait_for(conn.recv(), 0.05))["t"])
                    except TimeoutError:
                        break
            await asyncio.to_thread(feed.venue.wait_engine, flow.last_in_seq)
            last = trades_of(await asyncio.to_thread(engine_events, feed.venue), "BTCUSDT")[-1].trade_id
            while not ids or ids[-1] < last:
                ids.append(json.loads(await asyncio.wait_for(conn.recv(), 10))["t"])
        return ids

    try:
        ids = asyncio.run(healthy())
        assert "dropping client" in service.log() and "slow consumer" in service.log()
        assert ids == list(range(ids[0], ids[-1] + 1)), "the healthy client saw every trade, in order"
        # the stalled client's connection ends (once it reads, it finds the close frame or a reset)
        sock_closed = False
        stalled.settimeout(10)
        try:
            while stalled.recv(65536):
                pass
            sock_closed = True
        except (ConnectionResetError, TimeoutError):
            sock_closed = True
        assert sock_closed
    finally:
        stalled.close()
        service.stop()


def request(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.timeout(60)
def test_each_bad_rest_request_gets_its_documented_error(feed: Feed) -> None:
    base = f"{feed.rest}/api/v3"
    cases = {
        "/depth": (400, -1102),  # symbol missing
        "/depth?symbol=DOGEUSDT": (400, -1121),  # unknown symbol
        "/depth?symbol=BTCUSDT&limit=5001": (400, -1100),  # out of range
        "/depth?symbol=BTCUSDT&limit=abc": (400, -1100),
        "/depth?symbol=BTCUSDT&symbol=ETHUSDT": (400, -1101),  # duplicated
        "/klines?symbol=BTCUSDT&interval=2m": (400, -1120),
        "/klines?symbol=BTCUSDT": (400, -1102),
        "/aggTrades?symbol=BTCUSDT&fromId=1&startTime=1": (400, -1128),
        "/aggTrades?symbol=BTCUSDT&startTime=0&endTime=3600001": (400, -1127),
        "/ticker/24hr?symbols=BTCUSDT": (400, -1100),  # not a JSON array
        "/ticker/24hr?symbols=%5B%22DOGEUSDT%22%5D": (400, -1121),
        "/ticker/24hr?symbol=BTCUSDT&type=HUGE": (400, -1100),
        "/ticker?symbol=BTCUSDT&windowSize=24h": (400, -1100),  # Binance's sizes: 1m-59m, 1h-23h, 1d-7d
        "/ticker?symbol=BTCUSDT&windowSize=8d": (400, -1100),
        "/ticker?symbol=BTCUSDT&windowSize=1d2h": (400, -1100),  # units not combined
        "/ticker?windowSize=1h": (400, -1102),  # a symbol (or symbols) is needed
        "/exchangeInfo?symbols=%5B%22DOGEUSDT%22%5D": (400, -1121),
        "/nothing": (404, -1000),
    }
    for path, (status, code) in cases.items():
        got = request(base + path)
        assert (got[0], got[1]["code"]) == (status, code), path
        assert got[1]["msg"], path
    status, body = request(f"{base}/ticker/24hr?symbols=%5B%22BTCUSDT%22%2C%22ETHUSDT%22%5D")
    assert status == 200 and [t["symbol"] for t in body] == ["BTCUSDT", "ETHUSDT"]
    status, info = request(f"{base}/exchangeInfo?symbol=ETHUSDT")  # the gateways' limits, the symbol asked for
    assert (status, [s["symbol"] for s in info["symbols"]]) == (200, ["ETHUSDT"])
    assert info["rateLimits"] == Limits.of(Settings()).advertised()
    # public market data is readable from pages of any origin (the trading UI is served by the gateway)
    cors = urllib.request.Request(f"{base}/depth?symbol=BTCUSDT", headers={"Origin": "http://127.0.0.1:8080"})
    with urllib.request.urlopen(cors, timeout=10) as response:
        assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.timeout(60)
def test_each_bad_stream_request_gets_its_documented_error(feed: Feed) -> None:
    async def scenario() -> None:
        async with connect(f"{feed.ws}/ws/0") as ws:

            async def answer(message: str | dict[str, Any]) -> dict[str, Any]:
                await ws.send(message if isinstance(message, str) else json.dumps(message))
                return dict(json.loads(await ws.recv()))

            assert (await answer("{not json"))["error"]["code"] == 3
            assert (await answer("[1, 2]"))["error"]["code"] == 3
            got = await answer({"method": "SUBSCRIBE", "params": ["btcusdt@nothing"], "id": 1})
            assert got["error"]["code"] == 2 and got["id"] == 1 and "invalid stream" in got["error"]["msg"]
            got = await answer({"method": "SUBSCRIBE", "params": ["dogeusdt@trade"], "id": 2})
            assert got["error"]["code"] == 2 and "unknown symbol" in got["error"]["msg"]
            assert (await answer({"method": "FETCH", "params": [], "id": 3}))["error"]["code"] == 2
            assert (await answer({"method": "SUBSCRIBE", "params": "btcusdt@trade", "id": 4}))["error"]["code"] == 1
            assert (await answer({"method": "SUBSCRIBE", "params": [], "id": {"a": 1}}))["error"]["code"] == 1
            assert (await answer({"method": "LIST_SUBSCRIPTIONS", "id": 5, "extra": 1}))["error"]["code"] == 0
            assert (await answer({"method": "SET_PROPERTY", "params": ["speed", 1], "id": 6}))["error"]["code"] == 0
            assert (await answer({"method": "SET_PROPERTY", "params": ["combined", 1], "id": 7}))["error"]["code"] == 1
            # the good ones: acknowledged, repeated without duplicating, listed, removed
            good: list[tuple[dict[str, Any], Any]] = [
                ({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 8}, None),
                ({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": "9"}, None),
                ({"method": "LIST_SUBSCRIPTIONS", "id": 10}, ["btcusdt@trade"]),
                ({"method": "GET_PROPERTY", "params": ["combined"], "id": 11}, False),
                ({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 12}, None),
                ({"method": "LIST_SUBSCRIPTIONS", "id": 13}, []),
            ]
            for req, result in good:
                assert await answer(req) == {"result": result, "id": req["id"]}
            # past the message rate: told, then closed with 1008
            with pytest.raises(ConnectionClosed) as closed:
                for n in range(100):
                    await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 100 + n}))
                while True:
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

        for path, status in (("/nothing", 404), ("/ws/btcusdt@nothing", 400), ("/stream?streams=dogeusdt@trade", 400)):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"{feed.ws}{path}"):
                    pass
            assert refused.value.response.status_code == status, path
            assert json.loads(refused.value.response.body)["msg"], path

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_tickers_book_tickers_and_partial_books_follow_the_engine(feed: Feed) -> None:
    flow = Flow(feed.venue, seed=13, symbols=("BTCUSDT", "ETHUSDT"))
    flow.step(300)

    async def scenario() -> list[dict[str, Any]]:
        streams = ["!miniTicker@arr", "btcusdt@ticker", "btcusdt@bookTicker", "btcusdt@depth5@100ms"]
        got: list[dict[str, Any]] = []
        async with connect(f"{feed.ws}/stream?streams={'/'.join(streams)}") as ws:
            await asyncio.to_thread(flow.step, 100)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    got.append(json.loads(await asyncio.wait_for(ws.recv(), 0.2)))
                except TimeoutError:
                    pass
        return got

    got = asyncio.run(scenario())
    events = engine_events(feed.venue)
    last = {s: trades_of(events, s)[-1] for s in ("BTCUSDT", "ETHUSDT")}
    arrays = [m["data"] for m in got if m["stream"] == "!miniTicker@arr"]
    final = {t["s"]: t for arr in arrays for t in arr}
    assert set(final) == {"BTCUSDT", "ETHUSDT"} and all(t["e"] == "24hrMiniTicker" for t in final.values())
    assert final["BTCUSDT"]["c"] == "{:.8f}".format(Decimal(last["BTCUSDT"].price) / 100)
    tickers = [m["data"] for m in got if m["stream"] == "btcusdt@ticker"]
    assert tickers and tickers[-1]["c"] == final["BTCUSDT"]["c"] and tickers[-1]["L"] == last["BTCUSDT"].trade_id
    _, depth = request(f"{feed.rest}/api/v3/depth?symbol=BTCUSDT&limit=5")
    books = [m["data"] for m in got if m["stream"] == "btcusdt@depth5@100ms"]
    assert books[-1]["bids"] == depth["bids"] and books[-1]["asks"] == depth["asks"]
    tops = [m["data"] for m in got if m["stream"] == "btcusdt@bookTicker"]
    assert [tops[-1]["b"], tops[-1]["B"]] == depth["bids"][0] and [tops[-1]["a"], tops[-1]["A"]] == depth["asks"][0]
    assert all("e" not in t for t in tops)


@pytest.mark.timeout(60)
def test_a_peer_that_stops_answering_pings_is_closed(feed: Feed) -> None:
    feed.service.stop()
    service, _, ws = feed_service(feed.venue, feed.mongo_url, "fast-ping-feed")
    service.env["MERCURY_FEED_PING_SECONDS"] = "1"
    service.start()
    try:
        silent = stalled_client(ws, ["btcusdt@trade"])  # reads nothing, so it never answers a ping
        silent.settimeout(15)
        started = time.monotonic()
        data = b""
        try:
            while chunk := silent.recv(65536):  # the server's pings, then its close frame, then the end
                data += chunk
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 10
        assert b"\x89" in data  # a ping frame (FIN + opcode 9) came first
        silent.close()
    finally:
        service.stop()


def weight_header(url: str, source: str = "127.0.0.1") -> tuple[int, int, dict[str, Any]]:
    """(status, X-MBX-USED-WEIGHT-1M, body) of one GET from the loopback address ``source`` (each address is a client
    IP of its own to the limits)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10, source_address=(source, 0))
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        response = connection.getresponse()
        body = json.loads(response.read())
        return (
            response.status,
            int(response.headers["X-MBX-USED-WEIGHT-1M"]),
            {"body": body, **{k.lower(): v for k, v in response.headers.items()}},
        )
    finally:
        connection.close()


@pytest.mark.timeout(120)
def test_market_data_spends_binances_request_weights_and_past_the_limit_gets_429(feed: Feed) -> None:
    """Each endpoint's weight, as Binance's table gives it (by limit or by symbols where it weighs so), from the rise
    of X-MBX-USED-WEIGHT-1M; a bad request is counted too. Then a feed with a budget of 100 a minute refuses past
    it with 429, -1003 and Retry-After, on every endpoint, until the minute ends."""
    base = f"{feed.rest}/api/v3"
    two = "%5B%22BTCUSDT%22%2C%22ETHUSDT%22%5D"
    expected = {
        "/depth?symbol=BTCUSDT": 5, "/depth?symbol=BTCUSDT&limit=100": 5, "/depth?symbol=BTCUSDT&limit=101": 25,
        "/depth?symbol=BTCUSDT&limit=1000": 50, "/depth?symbol=BTCUSDT&limit=5000": 250,
        "/trades?symbol=BTCUSDT": 25, "/historicalTrades?symbol=BTCUSDT": 25, "/aggTrades?symbol=BTCUSDT": 4,
        "/klines?symbol=BTCUSDT&interval=1m": 2, "/uiKlines?symbol=BTCUSDT&interval=1m": 2,
        "/ticker/24hr?symbol=BTCUSDT": 2, f"/ticker/24hr?symbols={two}": 2, "/ticker/24hr": 80,
        "/ticker?symbol=BTCUSDT": 4, f"/ticker?symbols={two}": 8,
        "/ticker/price?symbol=BTCUSDT": 2, "/ticker/price": 4, "/ticker/bookTicker?symbol=BTCUSDT": 2,
        f"/ticker/bookTicker?symbols={two}": 4, "/avgPrice?symbol=BTCUSDT": 2, "/exchangeInfo": 20, "/time": 1,
        "/depth?symbol=DOGEUSDT": 5,  # refused (-1121), and counted
    }  # fmt: skip
    if time.time() % 60 > 50:  # every request of each pair in one minute's window
        time.sleep(60.1 - time.time() % 60)
    spent = {}
    for path, _ in expected.items():
        before = weight_header(f"{base}/ping")[1]
        spent[path] = weight_header(base + path)[1] - before
    assert spent == expected

    feed.service.stop()
    service, rest, _ = feed_service(feed.venue, feed.mongo_url, "small-budget-feed")
    service.env["MERCURY_WEIGHT_PER_MINUTE"] = "100"
    service.start()
    try:
        if time.time() % 60 > 50:
            time.sleep(60.1 - time.time() % 60)
        answers = [weight_header(f"{rest}/api/v3/trades?symbol=BTCUSDT", "127.0.0.2") for _ in range(5)]  # 25 each
        assert [(status, used) for status, used, _ in answers] == [(200, 25), (200, 50), (200, 75), (200, 100),
                                                                   (429, 125)]  # fmt: skip
        status, _, refused = weight_header(f"{rest}/api/v3/ping", "127.0.0.2")
        assert (status, refused["body"]["code"]) == (429, -1003) and "request weight" in refused["body"]["msg"]
        assert 1 <= int(refused["retry-after"]) <= 60
        assert weight_header(f"{rest}/api/v3/ping", "127.0.0.3")[:2] == (200, 1)  # another client is still served
    finally:
        service.stop()
