"""OpenTelemetry tracing across the real processes (wire/tracing.py): one order's trace holds a span of every hop,
chained gateway <- sequencer <- engine <- feed and persisters, from the JSON-lines files the file exporter writes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.feeds.conftest import feed_service
from tests.gateways.conftest import running_exchange
from tests.gateways.test_rest import LIMIT, signed
from tests.harness import PostgresServer, Service, wait_for
from tests.persistence.test_mongo_persister import persister as mongo_persister
from wire.config import Settings
from wire.tracing import Tracer, span_id, trace_id

HOPS = ("gateway", "sequencer", "engine", "feed", "persister")


def spans(directory: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            yield json.loads(line)


def of_trace(directory: Path, trace: int) -> list[dict[str, Any]]:
    return [s for s in spans(directory) if int(s["context"]["trace_id"], 16) == trace]


@pytest.mark.timeout(120)
def test_one_orders_trace_has_a_span_of_every_hop_chained_by_derived_ids(
    tmp_path: Path, postgres_server: PostgresServer, mongo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    traces = tmp_path / "traces"
    # every command traced; the SDK's batch processor (read by every process) exports every 100 ms instead of 5 s
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    settings = {"trace_every": "1", "trace_dir": str(traces)}
    (tmp_path / "x").mkdir()
    with running_exchange(tmp_path / "x", postgres_server, venue_settings=settings) as ex:
        feed, _, _ = feed_service(ex.venue, mongo_url)
        mongo: Service = mongo_persister(ex.venue, mongo_url)
        feed.start()
        mongo.start()
        try:
            status, order = signed(ex, "POST", "/api/v3/order", {**LIMIT, "newOrderRespType": "RESULT"})
            assert status == 200, order
            in_seq = order["orderId"]  # an order's id is its command's in_seq
            trace = trace_id(ex.venue.shard, in_seq)

            def every_hop() -> bool:
                return {s["attributes"]["mercury.hop"] for s in of_trace(traces, trace)} >= set(HOPS)

            wait_for(every_hop, 30, f"spans of every hop of in_seq {in_seq}")
        finally:
            feed.stop()
            mongo.stop()
    found = of_trace(traces, trace)
    by_hop: dict[str, list[dict[str, Any]]] = {}
    for s in found:
        assert s["attributes"]["mercury.in_seq"] == in_seq
        by_hop.setdefault(s["attributes"]["mercury.hop"], []).append(s)
    shard = ex.venue.shard

    def hex_id(hop: str) -> str:
        return f"0x{span_id(shard, in_seq, hop):016x}"

    (gateway,) = by_hop["gateway"]
    assert gateway["parent_id"] is None and gateway["name"] == "gateway PlaceOrder"
    assert gateway["context"]["span_id"] == hex_id("gateway")
    (sequencer,) = by_hop["sequencer"]
    assert (sequencer["context"]["span_id"], sequencer["parent_id"]) == (hex_id("sequencer"), hex_id("gateway"))
    (engine,) = by_hop["engine"]
    assert (engine["context"]["span_id"], engine["parent_id"]) == (hex_id("engine"), hex_id("sequencer"))
    assert engine["attributes"]["mercury.events"] >= 1
    # one span per feed and per persister, each under the engine's
    persisters = {s["resource"]["attributes"]["service.name"] for s in by_hop["persister"]}
    assert persisters == {"postgres-persister", "mongo-persister"}, persisters
    for leaf in by_hop["feed"] + by_hop["persister"]:
        assert leaf["parent_id"] == hex_id("engine"), leaf
    # the hops happen in order: the sequencer stamps after the gateway sends, the engine publishes after that
    assert gateway["start_time"] <= sequencer["start_time"] <= sequencer["end_time"] <= engine["end_time"]
    assert all(engine["end_time"] <= leaf["end_time"] for leaf in by_hop["feed"] + by_hop["persister"])


def test_tracing_off_records_nothing(tmp_path: Path) -> None:
    """The default (MERCURY_TRACE_EVERY unset): no tracer provider, no file, nothing sampled."""
    tracer = Tracer(Settings(trace_dir=str(tmp_path)), "engine", "engine", "e0")
    assert tracer.provider is None and not tracer.sampled(1, 10_000)
    tracer.span(1000, "engine apply+publish", time.time_ns(), time.time_ns())
    tracer.close()
    assert list(tmp_path.iterdir()) == []
    on = Tracer(Settings(trace_every=100, trace_dir=str(tmp_path)), "engine", "engine", "e0")
    assert list(on.sampled(1, 450)) == [100, 200, 300, 400] and list(on.sampled(200, 200)) == [200]
    assert not on.sampled(201, 299)
    on.close()
