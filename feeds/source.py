"""Where the feed's market state comes from: an engine snapshot, the events stream after it, then the engine's PUB
socket, checked event by event for gaps.

Start (and after a gap the events stream cannot fill):

1. subscribe to the PUB socket's ``x/`` topic (every batch) and its heartbeats, and buffer what arrives;
2. load the engine's stored snapshot; when the events stream no longer holds the events right after it (the
   persisters trim it), ask the engine for a fresh one (``TakeSnapshot`` through the sequencer) and wait for it;
3. read the events stream from the snapshot to its end, then the buffered batches, then live ones.

The engine appends a batch to the events stream before it publishes it, so whatever the socket skipped (a slow
joiner, a full queue) is in the stream: a gap is filled from there. The feed registers as a reader of the stream
with a lease, so the persisters do not trim it under a running feed.

A rebuild from a snapshot tells depth clients what changed meanwhile: one diff from the old book to the new,
numbered from the old update id + 1 to the new one, so their books stay gap-free.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import cast

import redis.asyncio as aioredis
import zmq
import zmq.asyncio

from client.sequencer import AsyncSequencerClient
from engine.snapshot import EngineState, decode_state
from engine.topics import ALL_TOPIC, HEARTBEAT_TOPIC
from feeds.hub import Hub
from feeds.market import Market, OutOfSequence, SymbolChanges
from persistence.stream import EventStream, Registry, StreamGap
from wire import keys
from wire.codec import decode_events, decode_heartbeat
from wire.config import Settings
from wire.enums import Side
from wire.events import Event
from wire.streams import Entry, entry_id
from wire.tracing import Tracer

log = logging.getLogger("mercury.feed.source")

LEASE = 30.0  # s: the feed's registration as a stream reader lasts this long without a new confirmation
CONFIRM_EVERY = 1.0  # s
SNAPSHOT_WAIT = 30.0  # s: how long a requested snapshot may take to appear


class SnapshotUnusable(Exception):
    """The events stream does not hold the events right after the snapshot."""


class Source:
    def __init__(self, settings: Settings, market: Market, hub: Hub, r: aioredis.Redis, name: str,
                 seed: Callable[[Market], Awaitable[None]] | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.market = market
        self.hub = hub
        self.r = r
        self.name = name
        self.seed = seed  # loads stored history as of the first snapshot (feeds.history)
        self.shard = market.venue.shard
        self.registry = Registry(r, self.shard)
        self.ready = asyncio.Event()
        self.buffer: deque[list[Event]] = deque()
        self.heartbeat = asyncio.Event()
        self.engine_out_seq = 0  # from the last heartbeat
        self.snapshots = 0  # snapshots requested (tests and logs)
        self.rebuilds = 0
        self.tracer = Tracer(settings, f"feed-{name}", "feed", self.shard)

    async def run(self) -> None:
        ctx = zmq.asyncio.Context.instance()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 0)  # the feed's own queue; a gap is still caught and filled
        sub.connect(self.settings.events_pub_endpoint)
        sub.subscribe(ALL_TOPIC)
        sub.subscribe(HEARTBEAT_TOPIC)
        receiver = asyncio.create_task(self._receive(sub))
        confirmer = asyncio.create_task(self._confirm())
        try:
            await self._start()
            while True:
                while not self.buffer:
                    self.heartbeat.clear()
                    await self.heartbeat.wait()
                batch = self.buffer.popleft()
                try:
                    traced = self.tracer.sampled(batch[0].in_seq, batch[-1].in_seq) if batch else range(0)
                    started = time.time_ns() if traced else 0
                    self.hub.publish(self.market.apply(batch))
                    for in_seq in traced:
                        self.tracer.span(in_seq, "feed apply+publish", started, time.time_ns())
                except OutOfSequence as exc:
                    log.warning("gap (%s): filling it from the events stream", exc)
                    await self._fill()
        finally:
            receiver.cancel()
            confirmer.cancel()
            sub.close(0)

    async def _receive(self, sub: zmq.asyncio.Socket) -> None:
        while True:
            topic, blob = await sub.recv_multipart()
            if topic == ALL_TOPIC:
                self.buffer.append(decode_events(blob))
            else:
                self.engine_out_seq = decode_heartbeat(blob).out_seq
            self.heartbeat.set()

    async def _confirm(self) -> None:
        while True:
            await asyncio.sleep(CONFIRM_EVERY)
            if self.market.out_seq:
                try:
                    await self.registry.confirm(self.name, self.market.out_seq, LEASE)
                except aioredis.RedisError as exc:
                    log.warning("cannot confirm the feed's stream position: %s", exc)

    async def _start(self) -> None:
        await self.heartbeat.wait()  # the subscription is live: nothing published from now on is missed
        state = await self._stored_state()
        while True:
            market = Market(self.market.venue)
            if state is not None:
                market.load(state)
            try:
                await self.registry.confirm(self.name, market.out_seq, LEASE)  # hold the stream from here on
                await self._entry_before(market.out_seq + 1)  # fails fast when the stream was trimmed past it
                if self.seed is not None:
                    await self.seed(market)  # candles and trades as of the snapshot, then the stream's on top
                await self._catch_up(market, publish=False)
                self._check_joined(market)
                break
            except (SnapshotUnusable, StreamGap) as exc:
                log.info("snapshot unusable (%s): asking the engine for a new one", exc)
                state = await self._fresh_state()
        self.market.symbols, self.market.out_seq, self.market.ts = market.symbols, market.out_seq, market.ts
        self.ready.set()
        log.info("feed ready at out_seq %d", self.market.out_seq)

    def _check_joined(self, market: Market) -> None:
        """The stream and the socket must meet: an empty or trimmed stream looks just like a quiet venue, but the
        engine's heartbeat (or the first batch buffered from the socket) tells where the engine really is."""
        if self.buffer:
            first = self.buffer[0][0].out_seq
            if first > market.out_seq + 1:
                raise SnapshotUnusable(f"the events stream ends at {market.out_seq}, the socket starts at {first}")
        elif self.engine_out_seq > market.out_seq:
            at = self.engine_out_seq
            raise SnapshotUnusable(f"the events stream ends at {market.out_seq}, the engine is at {at}")

    async def _stored_state(self) -> EngineState | None:
        blob = cast(bytes | None, await self.r.get(keys.snapshot(self.shard)))
        return None if blob is None else decode_state(blob)

    async def _fresh_state(self) -> EngineState:
        self.snapshots += 1
        client = AsyncSequencerClient(self.settings, name="feed")
        try:
            ack = await client.submit(client.take_snapshot())
        finally:
            await client.close()
        deadline = time.monotonic() + SNAPSHOT_WAIT
        while time.monotonic() < deadline:
            state = await self._stored_state()
            if state is not None and state.in_seq >= ack.in_seq:
                return state
            await asyncio.sleep(0.05)
        raise TimeoutError(f"the engine stored no snapshot at in_seq {ack.in_seq} within {SNAPSHOT_WAIT} s")

    async def _load(self, state: EngineState | None) -> None:
        """The market as of ``state`` (None: the empty venue), caught up with the events stream."""
        old = {s: (m.book.update_id, m.book.levels()) for s, m in self.market.symbols.items()}
        fresh = Market(self.market.venue)
        if state is not None:
            fresh.load(state)
        await self.registry.confirm(self.name, fresh.out_seq, LEASE)  # hold the stream from here on
        await self._catch_up(fresh, publish=False)
        self._adopt(fresh, old)

    def _adopt(self, fresh: Market, old: dict[str, tuple[int, dict[tuple[Side, int], int]]]) -> None:
        """Take ``fresh``'s books and positions, keeping the candles and trades (a rebuild loses none it had)."""
        changes: dict[str, SymbolChanges] = {}
        for symbol, m in self.market.symbols.items():
            new = fresh.symbols[symbol]
            old_id, old_levels = old[symbol]
            if old_id and new.book.update_id > old_id:
                levels = new.book.levels()
                diff = {k: q for k, q in levels.items() if old_levels.get(k) != q}
                diff.update((k, 0) for k in old_levels if k not in levels)
                changes[symbol] = SymbolChanges(old_id + 1, new.book.update_id, diff)
            m.book = new.book
            m.trade_id = max(m.trade_id, new.trade_id)
            if not m.last_price:
                m.last_price = m.candles.last_price = new.last_price
        self.market.out_seq, self.market.ts = fresh.out_seq, fresh.ts
        if changes:
            self.rebuilds += 1
            self.hub.publish(changes)

    async def _catch_up(self, market: Market, publish: bool) -> None:
        stream = EventStream(self.r, self.shard)
        stream.seek(await self._entry_before(market.out_seq + 1), market.out_seq)
        while True:
            chunk = await stream.read(256, None)
            if chunk is None:
                return
            if not chunk.events:
                continue
            if chunk.events[0].out_seq > market.out_seq + 1:
                raise SnapshotUnusable(f"the events stream starts at {chunk.events[0].out_seq}")
            changes = market.apply(chunk.events)
            if publish:
                self.hub.publish(changes)

    async def _entry_before(self, out_seq: int) -> str:
        """The stream id to read after so that the first entry read is the one holding ``out_seq``."""
        key = keys.events(self.shard)
        found = cast(list[Entry], await self.r.xrevrange(key, entry_id(out_seq), "-", count=1))
        if not found:
            first = cast(list[Entry], await self.r.xrange(key, "-", "+", count=1))
            if first and int(first[0][0].split(b"-")[0]) > out_seq:
                raise SnapshotUnusable(f"the events stream starts after {out_seq}")
            return "0-0"
        first_seq = int(found[0][0].split(b"-")[0])
        return f"{first_seq - 1}-0"

    async def _fill(self) -> None:
        """Fill a gap from the events stream; rebuild from a fresh snapshot if the stream cannot."""
        try:
            await self._catch_up(self.market, publish=True)
        except (SnapshotUnusable, StreamGap, OutOfSequence) as exc:
            log.warning("the events stream cannot fill the gap (%s): rebuilding from a snapshot", exc)
            while True:
                try:
                    await self._load(await self._fresh_state())
                    return
                except (SnapshotUnusable, StreamGap) as again:
                    log.warning("rebuild failed (%s): retrying", again)
