"""Rate limits and the overload answer, on an exchange with small limits and a sequencer that refuses new orders as
soon as the engine is 5 commands behind."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import ccxt
import pytest
import websockets

from tests.gateways.conftest import Exchange, running_exchange
from tests.gateways.test_ccxt import client as ccxt_client
from tests.gateways.test_rest import LIMIT, send, signed
from tests.harness import PostgresServer


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer) -> Iterator[Exchange]:
    gateway_env = {"MERCURY_WEIGHT_PER_MINUTE": "400", "MERCURY_ORDERS_PER_10S": "3"}
    with running_exchange(tmp_path_factory.mktemp("small"), postgres_server, {"busy_lag": "5"}, gateway_env) as ex:
        yield ex


def test_new_orders_past_the_10s_limit_get_429_with_retry_after_and_binances_headers(small: Exchange) -> None:
    time.sleep(10 - time.time() % 10 + 0.05)  # a fresh 10 s window
    answers = [signed(small, "POST", "/api/v3/order", {**LIMIT, "price": str(1000 + i)}, account=3) for i in range(4)]
    assert [status for status, _ in answers] == [200, 200, 200, 429]
    assert answers[3][1]["code"] == -1015 and "10 SECOND" in answers[3][1]["msg"]


def test_when_the_engine_lags_new_orders_get_the_overload_error_and_cancels_still_pass(small: Exchange) -> None:
    time.sleep(10 - time.time() % 10 + 0.05)  # a fresh 10 s window for the order count
    status, resting = signed(small, "POST", "/api/v3/order", {**LIMIT, "price": "990"}, account=2)
    assert status == 200, resting
    engine = small.venue.engine.proc
    assert engine is not None
    engine.send_signal(signal.SIGSTOP)  # the engine stops applying the journal: it falls behind
    try:
        lagging = small.venue.client("lag")
        for i in range(8):  # journaled while the engine is stopped, until the sequencer sees the lag
            lagging.submit(lagging.deposit(1, "USDT", 1 + i))
        time.sleep(0.2)
        status, body = signed(small, "POST", "/api/v3/order", LIMIT, account=1)
        assert (status, body["code"]) == (503, -1008), body
        canceled: list[tuple[int, Any]] = []
        cancel = threading.Thread(
            target=lambda: canceled.append(
                signed(
                    small, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": resting["orderId"]}, account=2
                )
            )
        )
        cancel.start()
        time.sleep(0.5)
    finally:
        engine.send_signal(signal.SIGCONT)
    cancel.join(10)
    assert canceled and canceled[0][0] == 200 and canceled[0][1]["status"] == "CANCELED", canceled


def test_request_weight_past_the_minute_limit_gets_429(small: Exchange) -> None:
    # last in this module: the gateway refuses this IP for the rest of the minute
    seen: list[tuple[int, Any]] = []
    for _ in range(30):  # exchangeInfo weighs 20: 400 a minute is 20 of them
        seen.append(send(small, "GET", "/api/v3/exchangeInfo"))
        if seen[-1][0] == 429:
            break
    status, body = seen[-1]
    assert (status, body["code"]) == (429, -1003)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(small.url + "/api/v3/ping", timeout=5)
    refused.value.close()
    assert refused.value.code == 429
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    assert int(refused.value.headers["X-MBX-USED-WEIGHT-1M"]) > 400


def test_websocket_api_requests_count_against_the_same_weight(small: Exchange) -> None:
    # after the REST test above this IP's weight for the minute is spent: the WebSocket API refuses too
    async def ask() -> dict[str, Any]:
        async with websockets.connect(small.url.replace("http://", "ws://") + "/ws-api/v3") as ws:
            await ws.send(json.dumps({"id": "1", "method": "time", "params": {}}))
            reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
            return reply

    reply = asyncio.run(ask())
    assert (reply["status"], reply["error"]["code"]) == (429, -1003), reply
    # as Binance's WebSocket API says when to try again: the minute window's end, in ms
    data = reply["error"]["data"]
    assert data["retryAfter"] % 60_000 == 0 and 0 < data["retryAfter"] - data["serverTime"] <= 60_000


def test_a_client_the_front_door_names_has_its_own_weight(small: Exchange) -> None:
    """After the tests above 127.0.0.1's weight for the minute is spent. A request from 127.0.0.1 (a trusted proxy,
    MERCURY_TRUSTED_PROXIES' default: the front door) that names its client in X-Forwarded-For spends that
    client's weight, over REST and over the WebSocket API alike."""
    client = "198.51.100.7"
    request = urllib.request.Request(small.url + "/api/v3/ping", headers={"X-Forwarded-For": client})
    for spent in (1, 2):
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert (answer.status, int(answer.headers["X-MBX-USED-WEIGHT-1M"])) == (200, spent)

    async def ask() -> dict[str, Any]:
        url = small.url.replace("http://", "ws://") + "/ws-api/v3"
        async with websockets.connect(url, additional_headers={"X-Forwarded-For": "198.51.100.8"}) as ws:
            await ws.send(json.dumps({"id": "1", "method": "time", "params": {}}))
            reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
            return reply

    reply = asyncio.run(ask())
    assert reply["status"] == 200, reply
    assert reply["rateLimits"][0]["count"] == 1


def test_a_client_that_goes_on_after_its_429s_is_banned_418_and_ccxt_raises_ddos_protection(small: Exchange) -> None:
    """400 weight a minute here: exchangeInfo (20) past 400 gets 429; a client that goes on to 800 is banned, and
    every request of it gets 418 -1003 with Retry-After, whatever it asks (ccxt: DDoSProtection); another client is
    not. A client named by the front door's header, so the ban stays with it."""
    where = {"X-Forwarded-For": "198.51.100.66"}

    def ask(path: str) -> tuple[int, Any, Any]:
        request = urllib.request.Request(small.url + path, headers=where)
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, json.loads(answer.read()), answer.headers
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read()), exc.headers

    statuses = [ask("/api/v3/exchangeInfo")[0] for _ in range(41)]
    if statuses.count(200) < 20:  # a minute window ended in between: its count started again
        statuses += [ask("/api/v3/exchangeInfo")[0] for _ in range(41)]
    assert statuses[-1] == 418 and 429 in statuses, statuses
    status, body, headers = ask("/api/v3/ping")
    assert (status, body["code"]) == (418, -1003) and "IP banned until" in body["msg"]
    assert 100 <= int(headers["Retry-After"]) <= 120
    banned = ccxt_client(small, 1)
    banned.headers = where
    with pytest.raises(ccxt.DDoSProtection, match="IP banned until"):
        banned.fetch_time()
    assert send(small, "GET", "/api/v3/time")[0] in (200, 429)  # 127.0.0.1 is not banned
