"""A gateway's stop (SIGTERM, as ``./mercury start`` sends on Ctrl-C) while an order waits for an engine that is not
answering: the order is answered (an unknown outcome, which is the truth), the process exits 0 within its grace and
its log has no traceback; the order, journaled, is applied once the engine runs again."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg

from gateways.binance.errors import UNKNOWN_OUTCOME
from tests.gateways.conftest import running_exchange
from tests.gateways.test_rest import LIMIT, signed
from tests.harness import PostgresServer, Service, wait_for


def _status(pg_url: str, client_oid: str) -> str | None:
    async def read() -> str | None:
        conn = await asyncpg.connect(pg_url)
        try:
            status: str | None = await conn.fetchval("SELECT status FROM orders WHERE client_oid = $1", client_oid)
            return status
        finally:
            await conn.close()

    return asyncio.run(read())


def test_a_stopping_gateway_answers_an_order_waiting_for_the_engine_and_exits_cleanly(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    with running_exchange(tmp_path, postgres_server) as ex:
        engine, gateway = ex.venue.engine.proc, ex.gateway.proc
        assert engine is not None and gateway is not None
        order = {**LIMIT, "newClientOrderId": "waits-on-a-stop", "newOrderRespType": "RESULT"}
        answers: list[tuple[int, Any]] = []
        engine.send_signal(signal.SIGSTOP)  # the engine applies nothing: the order's events never come
        try:
            waiting = threading.Thread(target=lambda: answers.append(signed(ex, "POST", "/api/v3/order", order)))
            waiting.start()
            time.sleep(0.5)  # acknowledged by the sequencer, journaled, and waiting (RESULT_TIMEOUT is 5 s)
            assert not answers, answers
            gateway.terminate()
            waiting.join(10)
            code = gateway.wait(10)
        finally:
            engine.send_signal(signal.SIGCONT)
        # answered, not cut off (uvicorn cancels what is still running after its grace: no answer, a traceback)
        assert answers == [(503, UNKNOWN_OUTCOME.body())], answers
        assert code == 0
        log = ex.gateway.log()
        assert "Traceback" not in log and "timeout graceful shutdown exceeded" not in log, log
        # the outcome was unknown, not a refusal: the journaled order is applied once the engine runs again
        wait_for(lambda: _status(ex.pg_url, "waits-on-a-stop") == "NEW", 15, "the journaled order to be applied")


def test_a_gateway_says_ready_only_once_it_listens(tmp_path: Path, postgres_server: PostgresServer) -> None:
    """'gateway ready' is what the tests, the benches and an operator wait for before connecting: it must follow the
    bind, which uvicorn does after the lifespan's startup. A gateway whose port is taken loads its state, never says
    ready and exits 3 (uvicorn's start failure)."""
    with running_exchange(tmp_path, postgres_server) as ex:
        port = int(ex.url.rsplit(":", 1)[1])  # taken by the exchange's own gateway
        second = Service("gateways.http", dict(ex.gateway.env, MERCURY_HTTP_PORT=str(port)),
                         tmp_path / "gateway-2.log", "gateway ready")  # fmt: skip
        second.start(wait=False)
        assert second.proc is not None
        code = second.proc.wait(20)
        log = second.log()
        assert code == 3, log
        assert (
            "gateway state loaded" in log and "gateway ready" not in log and "address already in use" in log.lower()
        ), log
        first = ex.gateway.log()
        assert first.index("gateway state loaded") < first.index("gateway ready"), first
