"""Throttling and engine lag over FIX: BusinessMessageRejects (j), not order rejections; cancels still pass while
the engine lags. On an exchange with a 3-orders-per-10-s limit and a sequencer that refuses new orders as soon as
the engine is 5 commands behind."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateways.conftest import Exchange, running_exchange
from tests.gateways.fix_support import Client, fix_gateway, initiator
from tests.gateways.test_fix import new_order
from tests.harness import PostgresServer, Service


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer) -> Iterator[Exchange]:
    gateway_env = {"MERCURY_ORDERS_PER_10S": "3"}
    with running_exchange(tmp_path_factory.mktemp("small-fix"), postgres_server, {"busy_lag": "5"},
                          gateway_env) as ex:  # fmt: skip
        yield ex


@pytest.fixture(scope="module")
def fix(small: Exchange, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, int, Path]]:
    state = tmp_path_factory.mktemp("fix-limits")
    service, port = fix_gateway(small, state / "gateway")
    service.start()
    yield service, port, state
    service.stop()


def test_orders_past_the_rate_limit_get_a_business_message_reject(
    small: Exchange, fix: tuple[Service, int, Path]
) -> None:
    _, port, state = fix
    key, secret = small.keys[3]
    with initiator(Client(key, secret), port, "BOT3", state / "bot3") as client:
        time.sleep(10 - time.time() % 10 + 0.05)  # a fresh 10 s window
        for n in range(4):
            client.send("D", new_order(f"rate-{n}", "1", "0.01", f"{990 + n}.00"))
        answers = [client.next() for _ in range(4)]
        assert [a[35] for a in answers].count("8") == 3, answers
        throttled = next(a for a in answers if a[35] == "j")
        assert (throttled[380], throttled[372], throttled[379]) == ("0", "D", "rate-3"), throttled
        assert "throttled" in throttled[58] and "retry after" in throttled[58]


def test_when_the_engine_lags_new_orders_are_refused_and_cancels_pass(
    small: Exchange, fix: tuple[Service, int, Path]
) -> None:
    _, port, state = fix
    key, secret = small.keys[2]
    with initiator(Client(key, secret), port, "BOT2", state / "bot2") as client:
        time.sleep(10 - time.time() % 10 + 0.05)
        client.send("D", new_order("lag-rest", "1", "0.01", "980.00"))
        assert client.next()[150] == "0"
        engine = small.venue.engine.proc
        assert engine is not None
        engine.send_signal(signal.SIGSTOP)  # the engine stops applying the journal: it falls behind
        try:
            lagging = small.venue.client("lag")
            for i in range(8):
                lagging.submit(lagging.deposit(1, "USDT", 1 + i))
            time.sleep(0.2)
            client.send("D", new_order("lag-new", "1", "0.01", "981.00"))
            refused = client.next(msg_type="j")
            assert (refused[380], refused[379]) == ("4", "lag-new") and "overloaded" in refused[58], refused
            client.send("F", {11: "lag-cxl", 41: "lag-rest", 55: "BTCUSDT", 54: "1", 60: "20260101-00:00:00.000"})
            time.sleep(0.5)
        finally:
            engine.send_signal(signal.SIGCONT)
        canceled = client.next(msg_type="8")
        assert (canceled[150], canceled[11], canceled[41]) == ("4", "lag-cxl", "lag-rest"), canceled
