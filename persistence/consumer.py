"""The loop every persister runs: read whole entries of the events stream after the store's offset, write them
with the new offset, confirm the offset in the registry, and trim the stream behind every consumer.

Faults: any error of the store or of Redis (a server down, a connection cut, a timeout) makes the loop close the
store, wait (exponential backoff, 0.1 s doubling to 5 s) and start over from what the store has committed. The
store reloads its state from its own database then, so a batch that failed halfway is not half-remembered. The lag
(events and seconds behind the newest event in the stream) is exported all the while, so a stalled persister shows.
Only a gap in the stream (events that are gone) stops the loop: reading on cannot repair it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import redis
import redis.asyncio as aioredis
import uvloop
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from persistence.stream import Chunk, EventStream, Registry, StreamGap
from wire.config import Settings, load_settings
from wire.tracing import Tracer
from wire.venue import DEFAULT_VENUE, Venue, load_venue

log = logging.getLogger("mercury.persistence")

EVENTS = Counter("mercury_persister_events_total", "Events applied", ["consumer"])
QUARANTINED = Counter("mercury_persister_quarantined_total", "Events or entries quarantined", ["consumer"])
RETRIES = Counter("mercury_persister_retries_total", "Restarts of the loop after an error", ["consumer"])
OUT_SEQ = Gauge("mercury_persister_out_seq", "Last out_seq durably applied", ["consumer"])
LAG_EVENTS = Gauge("mercury_persister_lag_events", "Events in the stream not yet applied", ["consumer"])
LAG_SECONDS = Gauge(
    "mercury_persister_lag_seconds", "Sequencer time from the first event not applied to the newest", ["consumer"]
)
LAG_EVERY = 1.0  # s between lag reports
BATCH_SECONDS = Histogram(
    "mercury_persister_batch_seconds",
    "Time to write one batch with its offset",
    ["consumer"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class Batch(Protocol):
    quarantined: int  # items the store quarantined (undecodable ones and those its model could not use)


B = TypeVar("B", bound=Batch)


class Store(Protocol[B]):
    """Where a persister writes. ``prepare`` folds a chunk into what ``commit`` writes; ``commit`` stores it with the
    new offset atomically (one transaction) or idempotently (writing the same batch twice leaves the same data).
    Batches are committed one at a time, in order; ``prepare`` of the next one runs while a commit is in flight."""

    consumer: str
    transient: tuple[type[Exception], ...]  # its errors that mean "the server is away", logged without a traceback

    async def open(self) -> tuple[str, int]:
        """Connect and load state; returns the offset stored: (stream entry id, out_seq)."""
        ...

    def prepare(self, chunk: Chunk) -> B: ...

    async def commit(self, batch: B, stream_id: str, out_seq: int) -> None: ...

    async def close(self) -> None: ...


# errors that mean a server is away or a connection broke: expected, retried, logged as one line
TRANSIENT: tuple[type[Exception], ...] = (
    OSError,
    ConnectionError,
    TimeoutError,
    redis.ConnectionError,
    redis.TimeoutError,
)


class Backoff:
    def __init__(self, first: float = 0.1, most: float = 5.0) -> None:
        self.first, self.most = first, most
        self.delay = first

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, self.most)
        return delay

    def reset(self) -> None:
        self.delay = self.first


class Consumer:
    def __init__(
        self,
        store: Store[Any],
        r: aioredis.Redis,
        shard: str,
        *,
        max_entries: int = 64,
        block_ms: int = 100,
        trim_every: float = 10.0,
        tracer: Tracer | None = None,
    ) -> None:
        self.store = store
        self.tracer = tracer
        self.r = r
        self.name = store.consumer
        self.source = EventStream(r, shard)
        self.registry = Registry(r, shard)
        self.max_entries = max_entries
        self.block_ms = block_ms
        self.trim_every = trim_every
        self.confirmed = 0  # out_seq of the last committed batch
        self.labels = (self.name,)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        # the lag is reported by a task of its own, so that it keeps growing while the store is away
        reporter = asyncio.ensure_future(self._report_lag_until(stop))
        try:
            await self._run(stop, backoff)
        finally:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)

    async def _run(self, stop: asyncio.Event, backoff: Backoff) -> None:
        while not stop.is_set():
            try:
                await self._serve(stop, backoff)
            except StreamGap:
                await self.store.close()
                raise
            except Exception as exc:
                RETRIES.labels(*self.labels).inc()
                delay = backoff.next()
                transient = isinstance(exc, TRANSIENT + self.store.transient)
                log.log(
                    logging.WARNING if transient else logging.ERROR,
                    "%s: %s: %s; starting over from the stored offset in %.1f s",
                    self.name,
                    type(exc).__name__,
                    exc,
                    delay,
                    exc_info=not transient,
                )
                await self._close_quietly()
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
        await self._close_quietly()

    async def _close_quietly(self) -> None:
        try:
            await self.store.close()
        except Exception as exc:  # closing a broken connection may fail too; the next open starts afresh
            log.debug("%s: close: %s", self.name, exc)

    async def _serve(self, stop: asyncio.Event, backoff: Backoff) -> None:
        stream_id, out_seq = await self.store.open()
        self.source.seek(stream_id, out_seq)
        await self.registry.confirm(self.name, out_seq)
        self.confirmed = out_seq
        OUT_SEQ.labels(*self.labels).set(out_seq)
        log.info("%s persister at out_seq %d (after stream entry %s)", self.name, out_seq, stream_id)
        backoff.reset()
        next_trim = 0.0
        # one commit in flight: while the database works on batch k, this loop reads and folds batch k + 1 (the
        # fold is CPU in this process, the commit mostly waiting on the server), then waits for k before it
        # commits k + 1, so batches still commit in order and one at a time
        in_flight: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                chunk = await self.source.read(self.max_entries, None if in_flight else self.block_ms)
                batch = self.store.prepare(chunk) if chunk is not None else None
                if in_flight is not None:
                    await in_flight
                    in_flight = None
                if chunk is not None and batch is not None:
                    in_flight = asyncio.ensure_future(self._commit(chunk, batch, self.source.stream_id,
                                                                   self.source.out_seq))  # fmt: skip
                now = time.monotonic()
                if now >= next_trim and self.trim_every > 0:
                    next_trim = now + self.trim_every
                    trimmed = await self.registry.trim()
                    if trimmed:
                        log.info("%s: trimmed %d entries of the events stream", self.name, trimmed)
            if in_flight is not None:
                await in_flight
                in_flight = None
        finally:
            if in_flight is not None:  # a fault elsewhere: the store is closed and reopened from its offset
                in_flight.cancel()
                await asyncio.gather(in_flight, return_exceptions=True)

    async def _commit(self, chunk: Chunk, batch: Batch, stream_id: str, out_seq: int) -> None:
        started, started_ns = time.perf_counter(), time.time_ns()
        await self.store.commit(batch, stream_id, out_seq)
        BATCH_SECONDS.labels(*self.labels).observe(time.perf_counter() - started)
        events, tracer = chunk.events, self.tracer
        if tracer is not None and events:
            for in_seq in tracer.sampled(events[0].in_seq, events[-1].in_seq):
                tracer.span(in_seq, f"{self.name} commit", started_ns, time.time_ns(),
                            {"mercury.batch_events": len(events)})  # fmt: skip
        await self.registry.confirm(self.name, out_seq)
        self.confirmed = out_seq
        EVENTS.labels(*self.labels).inc(len(chunk.events))
        OUT_SEQ.labels(*self.labels).set(out_seq)
        quarantined = batch.quarantined
        if quarantined:
            QUARANTINED.labels(*self.labels).inc(quarantined)
            log.warning("%s: quarantined %d item(s) up to stream entry %s", self.name, quarantined, chunk.stream_id)

    async def _report_lag_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._report_lag()
            except Exception as exc:  # Redis away too: the main loop says so; the gauges keep their last values
                log.debug("%s: lag: %s", self.name, exc)
            try:
                await asyncio.wait_for(stop.wait(), LAG_EVERY)
            except TimeoutError:
                pass

    async def _report_lag(self) -> None:
        """Events in the stream after the last committed one, and how much older (in sequencer time) the first of
        them is than the newest event."""
        if not self.confirmed:  # not opened yet (the store may be away): what this consumer last confirmed
            self.confirmed = (await self.registry.offsets()).get(self.name, 0)
        newest, newest_ts = await self.source.last_event()
        behind = max(newest - self.confirmed, 0)
        LAG_EVENTS.labels(*self.labels).set(behind)
        seconds = 0.0
        if behind:
            first_ts = await self.source.event_ts(self.confirmed + 1)
            seconds = max(newest_ts - first_ts, 0) / 1e9 if first_ts is not None else 0.0
        LAG_SECONDS.labels(*self.labels).set(seconds)


async def run_until_signal(consumer: Consumer, r: aioredis.Redis) -> int:
    """Run the consumer until SIGTERM or SIGINT; exit code 0, or 1 when the stream has a gap."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await consumer.run(stop)
    except Exception as exc:
        log.error("%s persister stopped: %s", consumer.name, exc)
        return 1
    finally:
        await r.aclose()
    log.info("%s persister stopped at out_seq %d", consumer.name, consumer.source.out_seq)
    return 0


def run_persister(make_store: Callable[[Settings, Venue], Store[Any]]) -> int:
    """The ``main`` of a persister process: settings and venue from the environment, the metrics exporter, the
    consumer loop on uvloop until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = load_settings()
    venue = load_venue(settings.venue_file or DEFAULT_VENUE)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)

    async def serve() -> int:
        r = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=10)
        store = make_store(settings, venue)
        tracer = Tracer(settings, f"{store.consumer}-persister", "persister", venue.shard)
        try:
            return await run_until_signal(Consumer(store, r, venue.shard, tracer=tracer), r)
        finally:
            tracer.close()

    return uvloop.run(serve())
