"""The front door (nginx) in front of a gateway and two feeds: one URL for everything, as an unmodified ccxt and
ccxt.pro use it (trading, market data, order book stream, user data stream), the legacy listenKey stream, and the
UI's configuration on the same origin."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from frontdoor.nginx import render
from gateways.http.app import UI_BUILD
from tests.feeds.conftest import feed_service
from tests.gateways.conftest import Exchange, running_exchange
from tests.gateways.test_ccxt import client
from tests.gateways.test_ccxt_pro import pro_client
from tests.gateways.test_rest import LIMIT, signed
from tests.harness import PostgresServer, Service, free_port, wait_for
from wire.config import Settings


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer,
          mongo_server: Any) -> Iterator[Exchange]:  # fmt: skip
    directory = tmp_path_factory.mktemp("frontdoor")
    with running_exchange(directory, postgres_server) as ex:
        feeds: list[Service] = []
        pairs = []
        for name in ("feed-a", "feed-b"):
            service, rest, ws = feed_service(ex.venue, mongo_server.url(f"frontdoor_{name.replace('-', '_')}"), name)
            service.start()
            feeds.append(service)
            pairs.append(f"127.0.0.1:{rest.rsplit(':', 1)[1]}/{ws.rsplit(':', 1)[1]}")
        port = free_port()
        env = dict(ex.venue.env, MERCURY_FRONTDOOR_PORT=str(port), MERCURY_FRONTDOOR_STATE_DIR=str(directory / "fd"),
                   MERCURY_FRONTDOOR_GATEWAYS=ex.url.removeprefix("http://"),
                   MERCURY_FRONTDOOR_FEEDS=",".join(pairs))  # fmt: skip
        door = Service("frontdoor", env, directory / "frontdoor.log", "front door on")
        door.start()
        try:
            wait_for(lambda: _answers(port), 15, "the front door")
            yield dataclasses.replace(ex, url=f"http://127.0.0.1:{port}")
        finally:
            door.stop()
            for service in feeds:
                service.stop()


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_one_url_routes_trading_to_the_gateway_and_market_data_to_the_feeds(front: Exchange) -> None:
    assert get(front.url + "/api/v3/ping") == {}
    assert {s["symbol"] for s in get(front.url + "/api/v3/exchangeInfo")["symbols"]} >= {"BTCUSDT"}
    status, order = signed(front, "POST", "/api/v3/order", {**LIMIT, "price": "1234.00"}, account=1)
    assert status == 200, order
    wait_for(lambda: ["1234.00000000", "0.01000000"] in get(front.url + "/api/v3/depth?symbol=BTCUSDT")["asks"], 10,
             "the order in the feed's book")  # fmt: skip
    assert "cs" in get(front.url + "/api/v3/depth?symbol=BTCUSDT")  # a feed answered: Mercury's checksum
    assert get(front.url + "/ui-config.json") == {"marketRest": front.url, "marketWs": front.url.replace("http", "ws"),
                                                  "prometheus": front.url + "/prometheus",
                                                  "research": front.url + "/research"}  # fmt: skip
    if UI_BUILD.joinpath("index.html").exists():  # ./mercury test builds it before the tests
        with urllib.request.urlopen(front.url + "/ui/", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()  # the gateway serves it, through the door
    assert signed(front, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": order["orderId"]})[0] == 200


def test_the_door_tells_the_gateway_who_the_client_is_and_a_client_cannot_say_it_itself(front: Exchange) -> None:
    """The gateway counts the request weight of the client the door names in X-Forwarded-For; a client that sends
    that header itself is not believed (the door sets it to the address it sees: here 127.0.0.1, whose weight the
    exchangeInfo just spent)."""

    def used(path: str, headers: dict[str, str]) -> int:
        request = urllib.request.Request(front.url + path, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.headers["X-MBX-USED-WEIGHT-1M"])

    for _ in range(3):  # both requests in one minute window (the windows are aligned to the clock)
        minute = time.time() // 60
        before = used("/api/v3/exchangeInfo", {})  # 20
        spoofed = used("/api/v3/ping", {"X-Forwarded-For": "198.51.100.9"})
        if time.time() // 60 == minute:
            break
    assert before >= 20 and spoofed > before  # 127.0.0.1's count went on; 198.51.100.9's would have been 1


def test_ccxt_and_ccxt_pro_use_the_front_door_as_their_only_url(front: Exchange) -> None:
    async def scenario() -> None:
        pro = pro_client(front, 2)  # ws.spot and ws-api both point at the front door
        try:
            await pro.load_markets()
            book = await pro.watch_order_book("BTC/USDT")  # the feed's stream and depth, through the door
            assert book["nonce"] >= 0
            sync = client(front, 2)
            watching = asyncio.ensure_future(pro.watch_orders("BTC/USDT"))  # the gateway's user data stream
            await asyncio.sleep(1)  # subscribed before the order
            await asyncio.to_thread(sync.create_order, "BTC/USDT", "limit", "sell", 0.01, 1500)
            orders = await watching
            assert orders[-1]["price"] == 1500.0
            # the book ccxt keeps, before waiting for its next update: the order's diff may have come before the
            # execution report did, and then no other update comes (nothing else trades here)
            while not any(level[0] == 1500.0 for level in pro.orderbooks["BTC/USDT"]["asks"]):
                await pro.watch_order_book("BTC/USDT")
            await asyncio.to_thread(sync.cancel_all_orders, "BTC/USDT")
        finally:
            await pro.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_listen_key_stream_reaches_the_gateway_through_the_front_door(front: Exchange) -> None:
    key, _ = front.keys[3]
    request = urllib.request.Request(front.url + "/api/v3/userDataStream", method="POST",
                                     headers={"X-MBX-APIKEY": key})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        listen_key = json.loads(response.read())["listenKey"]

    async def scenario() -> dict[str, Any]:
        async with connect(front.url.replace("http", "ws") + f"/ws/{listen_key}") as ws:
            await asyncio.to_thread(signed, front, "POST", "/api/v3/order", {**LIMIT, "price": "1600.00"}, 3)
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if event.get("e") == "executionReport":
                    return dict(event)

    report = asyncio.run(scenario())
    assert (report["x"], report["p"]) == ("NEW", "1600.00000000")


def test_the_rendered_configuration_is_valid_for_nginx(tmp_path: Path) -> None:
    for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (tmp_path / sub).mkdir(parents=True)
    conf = tmp_path / "nginx.conf"
    conf.write_text(render(Settings(), tmp_path))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    done = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
