"""The engine process's Prometheus series, and the one function that counts a write's events.

The matching thread touches only ``APPLIED`` and ``ENGINE_IN_SEQ``, once per journal batch and once per read of
the socket; everything about events is counted by the writer thread once per events-stream write
(``count_write``), so the per-event cost of metrics is a C-level tally, never a Python call per event on the
matching thread. ``bench.metrics_cost`` measures what that costs against the same work without it.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from wire.events import CancelRejected, Event, FundingRejected, OrderRejected

APPLIED = Counter("mercury_engine_commands_total", "Commands applied")
EVENTS = Counter("mercury_engine_events_total", "Events written and published, by type", ["type"])
TRADES = Counter("mercury_engine_trades_total", "Trades executed, by symbol", ["symbol"])
REJECTS = Counter(
    "mercury_engine_rejects_total", "Commands the engine refused, by event and reason", ["event", "reason"]
)
# the sequencer's stamp (ts, wall clock ns) of a write's last event to its publication: the journal -> engine ->
# events stream hop, observed once per write by the writer thread (the matching thread reads no clock)
PUBLISH_LAG = Histogram(
    "mercury_engine_publish_lag_seconds",
    "From the sequencer's stamp of a command to its events being stored and published",
    buckets=(1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 1, 10),
)
WRITE_EVENTS = Histogram(
    "mercury_engine_write_events", "Events per events-stream write", buckets=(1, 4, 16, 64, 256, 1024, 4096, 16384)
)
REFUSALS = (OrderRejected, CancelRejected, FundingRejected)
ENGINE_IN_SEQ = Gauge("mercury_engine_in_seq", "Last applied in_seq")
ENGINE_OUT_SEQ = Gauge("mercury_engine_out_seq", "Last published out_seq")

# one events-stream write: (first out_seq, encoded frame, the events) per journal batch in it
Write = list[tuple[int, bytes, list[Event]]]


_event_counters: dict[type, Any] = {}  # type -> its child of EVENTS: labels() takes a lock and hashes a tuple
_trade_counters: dict[str, Any] = {}


def count_write(batches: Write, trades: Tally[str]) -> None:
    """The metrics of one write; ``trades`` by symbol comes from the writer's routing pass (engine.topics), so the
    only per-event step here is a C loop (``Counter.update`` over ``map``): a Python loop over the events cost a
    fifth of the engine's time (bench/reports/metrics-cost.md). Refusals, which are rare, are looked at only when
    the write holds one."""
    if not batches:
        return
    PUBLISH_LAG.observe(max(0, time.time_ns() - batches[-1][2][-1].ts) / 1e9)
    kinds: Tally[type] = Tally()
    for _, _, events in batches:
        kinds.update(map(type, events))
    WRITE_EVENTS.observe(sum(kinds.values()))
    for kind, n in kinds.items():
        counter = _event_counters.get(kind)
        if counter is None:
            counter = _event_counters[kind] = EVENTS.labels(kind.__name__)
        counter.inc(n)
    for symbol, n in trades.items():
        counter = _trade_counters.get(symbol)
        if counter is None:
            counter = _trade_counters[symbol] = TRADES.labels(symbol)
        counter.inc(n)
    if not kinds.keys().isdisjoint(REFUSALS):
        for _, _, events in batches:
            for ev in events:
                if isinstance(ev, REFUSALS):
                    REJECTS.labels(type(ev).__name__, ev.reason.name).inc()
