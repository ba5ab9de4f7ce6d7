"""The engine process: the one I/O loop around the pure core (engine.core).

Threads
    The matching thread (pinned to one core) reads journal batches from the sequencer's PUB socket, applies
    them and hands each batch's events to the writer thread. The writer appends them to the events stream in
    Redis (pipelined) and only then publishes them on the engine's PUB socket, with a heartbeat. The matching
    thread never waits on Redis, except when the writer's bounded queue is full: then the engine slows down, the
    heartbeat's in_seq falls behind and the sequencer refuses new orders. Nothing is dropped.

Gaps
    PUB/SUB drops messages when the engine is away or slow. The journal has them all, so a batch whose first
    in_seq is past the next expected one makes the engine read the missing commands from the journal first;
    batches it has already applied are skipped. Commands are applied exactly once, in in_seq order.

Recovery
    Load the newest snapshot, replay the journal after its in_seq, and suppress every event whose out_seq is
    already in the events stream: a restarted engine emits nothing twice, and the events continue gap-free.
    Snapshots go through the writer's queue after the events that precede them, so a snapshot is never newer
    than the events stream.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Sequence

import redis
import zmq

from engine.core import Engine
from engine.events_stream import last_out_seq, stored_snapshot
from engine.metrics import APPLIED, ENGINE_IN_SEQ, ENGINE_OUT_SEQ, Write, count_write
from engine.topics import ALL_TOPIC, HEARTBEAT_TOPIC, TopicRouter
from sequencer.journal import Journal
from wire import keys
from wire.codec import Heartbeat, JournalBatch, decode_batch, encode
from wire.config import Settings
from wire.errors import MalformedMessage, MercuryError
from wire.events import Event
from wire.process import start_process
from wire.ratelog import RateLimitedLog
from wire.streams import StreamAppender
from wire.tracing import Tracer
from wire.venue import Venue

log = logging.getLogger("mercury.engine")


HEARTBEAT_IDLE = 0.05  # s: heartbeat period when no events flow
HEARTBEAT_BUSY = 0.005  # s: at most this often while events flow


def trace_write(tracer: Tracer, batches: Write, published: int) -> None:
    """The engine's span of each sampled command in a write: from its stamp (the sequencer's time, carried by its
    events) to ``published``, when its events were stored and about to be published (read before the send, so a
    subscriber's span, which ends after receipt, ends after this one). Run by the writer thread: the matching
    thread records nothing. One range per batch; only a sampled command's own events are looked at."""
    for _, _, events in batches:
        for in_seq in tracer.sampled(events[0].in_seq, events[-1].in_seq):
            own = [ev for ev in events if ev.in_seq == in_seq]
            if own:
                tracer.span(in_seq, "engine apply+publish", own[0].ts, published,
                            {"mercury.events": len(own), "mercury.first_out_seq": own[0].out_seq})  # fmt: skip


class _Stop:
    pass


STOP = _Stop()


class EventWriter(threading.Thread):
    """Appends event batches to the events stream, then publishes them; also stores snapshots and heartbeats."""

    def __init__(self, r: redis.Redis, shard: str, pub: zmq.Socket[bytes], in_seq: int, out_seq: int,
                 tracer: Tracer | None = None) -> None:  # fmt: skip
        super().__init__(name="event-writer", daemon=True)
        self.r = r
        self.tracer = tracer or Tracer(Settings(), "engine", "engine", shard)  # default Settings: tracing off
        self.events_key = keys.events(shard)
        self.snapshot_key = keys.snapshot(shard)
        self.appender = StreamAppender(r)
        self.pub = pub
        self.queue: queue.Queue[tuple[list[Event], int] | bytes | _Stop] = queue.Queue(maxsize=4096)
        self.in_seq = in_seq
        self.out_seq = out_seq
        self.router = TopicRouter()  # pub is an XPUB socket: its subscriptions say which topics are wanted
        self._last_heartbeat = 0.0
        self.failed: BaseException | None = None

    def put_events(self, events: list[Event], in_seq: int) -> None:
        self.queue.put((events, in_seq))

    def put_snapshot(self, data: bytes) -> None:
        self.queue.put(data)

    def stop(self, timeout: float | None = None) -> bool:
        """Drain the queue and stop; False if it could not finish within ``timeout`` (Redis unreachable)."""
        self.queue.put(STOP)
        self.join(timeout)
        return not self.is_alive()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # the matching thread checks this and exits: never run without a writer
            self.failed = exc
            log.exception("event writer failed")

    def _run(self) -> None:
        q = self.queue
        while True:
            self._read_subscriptions()
            try:
                item = q.get(timeout=HEARTBEAT_IDLE)
            except queue.Empty:
                self._heartbeat()
                continue
            items = [item]
            while len(items) < 512:
                try:
                    items.append(q.get_nowait())
                except queue.Empty:
                    break
            batches: list[tuple[int, bytes, list[Event]]] = []
            snapshots: list[bytes] = []
            stopping = False
            for it in items:
                if isinstance(it, _Stop):
                    stopping = True
                elif isinstance(it, bytes):
                    snapshots.append(it)
                else:
                    events, self.in_seq = it
                    if events:
                        batches.append((events[0].out_seq, encode(events), events))
            if batches or snapshots:
                self._store(batches, snapshots)
                published = time.time_ns()
                count_write(batches, self._publish(batches))
                if self.tracer.every:
                    trace_write(self.tracer, batches, published)
            if stopping or time.monotonic() - self._last_heartbeat >= HEARTBEAT_BUSY:
                self._heartbeat()  # under load, every few ms rather than after every write
            if stopping:
                return

    def _store(self, batches: list[tuple[int, bytes, list[Event]]], snapshots: list[bytes]) -> None:
        """One pipelined round trip; retried until Redis takes it (entries that already landed are skipped)."""
        delay = 0.01
        while True:
            try:
                # events first, then the snapshot: a snapshot never runs ahead of the events stream
                extra = [("SET", self.snapshot_key, snapshots[-1])] if snapshots else []
                self.appender.append(self.events_key, [(first, blob) for first, blob, _ in batches], *extra)
                return
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if delay == 0.01:  # once per outage, not once per retry
                    log.error("events stream write failed (%s); retrying until Redis answers", exc)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                try:
                    stored = last_out_seq(self.r, self.events_key)
                except (redis.ConnectionError, redis.TimeoutError):
                    continue
                batches = [b for b in batches if b[2][-1].out_seq > stored]

    def _read_subscriptions(self) -> None:
        """XPUB hands us b"\x01<prefix>" when a prefix gains its first subscriber, b"\x00<prefix>" when it loses
        its last one."""
        recv = self.pub.recv
        while True:
            try:
                message = recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if message[:1] == b"\x01":
                self.router.subscribe(message[1:])
            elif message[:1] == b"\x00":
                self.router.unsubscribe(message[1:])

    def _publish(self, batches: Write) -> Tally[str]:
        """Each batch to its wanted topics; returns the write's trades by symbol, counted on the way."""
        send, more = self.pub.send, zmq.SNDMORE  # frame by frame: cheaper than send_multipart in pyzmq
        router, trades = self.router, Tally[str]()
        everything = router.is_wanted(ALL_TOPIC)
        for _, blob, events in batches:
            if everything:
                send(ALL_TOPIC, more)
                send(blob)
            for topic, group in router.route(events, trades).items():
                send(topic, more)
                send(encode(group))
            self.out_seq = events[-1].out_seq
        ENGINE_OUT_SEQ.set(self.out_seq)
        return trades

    def _heartbeat(self) -> None:
        self._last_heartbeat = time.monotonic()
        self.pub.send(HEARTBEAT_TOPIC, zmq.SNDMORE)
        self.pub.send(encode(Heartbeat(self.in_seq, self.out_seq)))


class EngineService:
    def __init__(self, settings: Settings, venue: Venue, r: redis.Redis, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
        self.settings = settings
        self.venue = venue
        self.r = r
        self.ctx = ctx
        self.journal = Journal(r, keys.journal(venue.shard))
        self.engine = Engine(venue.symbols, venue.assets)
        self.suppress_until = 0  # events with out_seq <= this are already in the events stream
        self.since_snapshot = 0
        self.bad_input = RateLimitedLog(log)
        self._stopping = False
        self.sub = ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.RCVHWM, 100_000)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.writer: EventWriter | None = None

    def recover(self) -> None:
        """Snapshot + journal replay, silent up to the events already stored. Subscribes first, so that nothing
        journaled during the replay is missed (duplicates are skipped by in_seq). Waits for Redis if it is down."""
        self.sub.connect(self.settings.journal_pub_endpoint)
        _until_redis_answers(self._load)
        pub = self.ctx.socket(zmq.XPUB)
        pub.setsockopt(zmq.LINGER, 1000)
        pub.setsockopt(zmq.SNDHWM, 100_000)
        pub.bind(self.settings.events_pub_endpoint)
        writer_redis = redis.Redis(connection_pool=self.r.connection_pool)
        tracer = Tracer(self.settings, "engine", "engine", self.venue.shard)
        self.writer = EventWriter(writer_redis, self.venue.shard, pub, self.engine.in_seq, self.engine.out_seq, tracer)
        self.writer.start()
        started = self.engine.in_seq
        _until_redis_answers(self.catch_up)
        log.info(
            "recovered: snapshot at in_seq %d, replayed to %d, events stored up to %d, now at out_seq %d",
            started,
            self.engine.in_seq,
            self.suppress_until,
            self.engine.out_seq,
        )

    def _load(self) -> None:
        data = stored_snapshot(self.r, self.venue.shard)
        symbols, assets = self.venue.symbols, self.venue.assets
        self.engine = Engine(symbols, assets) if data is None else Engine.restore(symbols, data, assets)
        self.suppress_until = last_out_seq(self.r, keys.events(self.venue.shard))
        if self.engine.out_seq > self.suppress_until:
            raise MercuryError(
                f"snapshot at out_seq {self.engine.out_seq} is ahead of the events stream ({self.suppress_until})"
            )

    def catch_up(self) -> None:
        """Apply every journaled command after the engine's in_seq."""
        for batch in self.journal.read_from(self.engine.in_seq + 1):
            if batch.first_in_seq > self.engine.in_seq + 1:
                raise MercuryError(
                    f"journal gap: next entry starts at {batch.first_in_seq}, need {self.engine.in_seq + 1}"
                )
            self.apply_batch(batch)

    def apply_batch(self, batch: JournalBatch) -> None:
        engine = self.engine
        first = batch.first_in_seq
        skip = engine.in_seq + 1 - first  # commands of this batch applied already
        cmds = batch.cmds
        if skip >= len(cmds):
            return
        if skip < 0:
            _until_redis_answers(self.catch_up)  # a gap: the journal has what the socket dropped
            skip = engine.in_seq + 1 - first
            if skip >= len(cmds):
                return
        out = engine.apply_many(first, batch.stamps, cmds, skip)
        snapshot, engine.snapshot_requested = engine.snapshot_requested, False
        count = len(cmds) - skip
        APPLIED.inc(count)
        self.since_snapshot += count
        if out and out[0].out_seq <= self.suppress_until:
            out = [ev for ev in out if ev.out_seq > self.suppress_until]
        assert self.writer is not None
        self.writer.put_events(out, engine.in_seq)
        if snapshot or self.since_snapshot >= self.settings.snapshot_every:
            self.snapshot()

    def snapshot(self) -> None:
        assert self.writer is not None
        self.writer.put_snapshot(self.engine.snapshot())
        self.since_snapshot = 0

    def handle_frame(self, frame: bytes) -> None:
        try:
            batch = decode_batch(frame)
        except MalformedMessage as exc:
            self.bad_input.warning("dropped an undecodable batch frame (%d bytes): %s", len(frame), exc)
            return  # whatever it was, the journal has the real commands: the next batch's gap brings them in
        self.apply_batch(batch)

    def stop(self, *_: object) -> None:
        self._stopping = True

    def run(self) -> None:
        sub, poller = self.sub, zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        writer = self.writer
        assert writer is not None
        while not self._stopping:
            if writer.failed is not None:
                raise MercuryError("event writer stopped") from writer.failed
            if not poller.poll(100):
                continue
            for _ in range(1024):
                try:
                    frame = sub.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self.handle_frame(frame)
            ENGINE_IN_SEQ.set(self.engine.in_seq)

    def shutdown(self) -> None:
        """Clean stop: a final snapshot, then the writer drains its queue."""
        if self.writer is not None and self.writer.failed is None:
            self.snapshot()
            if not self.writer.stop(timeout=5):
                log.warning("final snapshot not stored (Redis unreachable): the next start replays more journal")
        if self.writer is not None:
            self.writer.tracer.close()
        log.info("engine stopped at in_seq %d out_seq %d", self.engine.in_seq, self.engine.out_seq)

    def close(self) -> None:
        """Stop the writer (draining its queue) and close the sockets."""
        if self.writer is not None and self.writer.is_alive():
            self.writer.stop()
        self.sub.close(0)
        if self.writer is not None:
            self.writer.pub.close(0)


def _until_redis_answers(step: Callable[[], None]) -> None:
    """Run ``step`` until it completes without a Redis connection error (each step is safe to repeat)."""
    while True:
        try:
            step()
            return
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("waiting for Redis: %s", exc)
            time.sleep(0.5)


def pin_to_core(core: int) -> int:
    allowed: Sequence[int] = sorted(os.sched_getaffinity(0))
    chosen = allowed[core] if -len(allowed) <= core < len(allowed) else allowed[-1]
    os.sched_setaffinity(0, {chosen})  # pid 0: this thread only; the writer thread started before keeps its mask
    return chosen


def main() -> None:
    rt = start_process()
    settings = rt.settings
    service = EngineService(rt.settings, rt.venue, rt.redis, rt.zmq)
    signal.signal(signal.SIGTERM, service.stop)
    signal.signal(signal.SIGINT, service.stop)
    service.recover()
    core = pin_to_core(settings.engine_core)
    log.info("engine matching on core %d; events on %s", core, settings.events_pub_endpoint)
    try:
        service.run()
    finally:
        service.shutdown()


if __name__ == "__main__":
    main()
