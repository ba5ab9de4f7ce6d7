"""Observation points on a running venue: where a message was seen, and when (CLOCK_REALTIME ns).

Nothing is added to the venue's messages (the engine has no clock and stays deterministic); these listen where any
consumer may:

* ``Tap`` (in a process of its own, ``TapProcess``) subscribes to the sequencer's journal PUB socket (a batch is
  published there only after Redis accepted it: the moment it is journaled, each command with its sequencer stamp
  ``ts``) and to the engine's PUB socket (the moment each command's first event is published, every trade, the
  heartbeats). One thread polls both, the journal first, so a command is seen journaled before its events.
* ``Watchers`` run an event loop in a thread: WebSocket clients on the trade stream (through the front door, and on
  each feed directly), and polls of where the persisters are: PostgreSQL's ``consumer_offsets`` row, committed in
  the same transaction as the rows it covers, every 5 ms; the MongoDB persister's offset as it confirms it in the
  Redis registry right after its write, every 5 ms.

A late observer reads late: on a busy 2-core machine these wait for a core like every other process, so each hop
carries the observer's own scheduling delay (well under a millisecond when a core is free).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import Any

import asyncpg
import msgspec
import redis.asyncio as aioredis
import zmq
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wire import keys
from wire.codec import RawJournalBatch, decode_events, decode_heartbeat
from wire.config import Settings
from wire.events import CancelRejected, OrderRejected, TradeExecuted

_journal_decoder = msgspec.msgpack.Decoder(RawJournalBatch)  # commands stay raw bytes: only stamps are read


class SeqColumn:
    """An int64 per in_seq from ``base`` on, growing as needed (0: not seen)."""

    __slots__ = ("base", "values")

    def __init__(self, base: int) -> None:
        self.base = base
        self.values = array("q")

    def set(self, seq: int, value: int) -> None:
        i = seq - self.base
        if i < 0:
            return
        values = self.values
        if i >= len(values):
            values.frombytes(bytes(8 * max(i + 1 - len(values), 65_536)))
        values[i] = value

    def get(self, seq: int) -> int:
        i = seq - self.base
        return self.values[i] if 0 <= i < len(self.values) else 0


@dataclass
class TapData:
    """What the tap saw: per in_seq its stamp, when it was journaled, when its first event was published and the
    out_seq of its last event; per trade id (of the symbol) when it was published and its command's in_seq."""

    stamp: SeqColumn
    journaled: SeqColumn
    published: SeqColumn
    last_out: SeqColumn
    trades: dict[int, int] = field(default_factory=dict)  # trade id -> ns published
    trade_seq: dict[int, int] = field(default_factory=dict)  # trade id -> in_seq of its command
    refusals: Counter[str] = field(default_factory=Counter)  # OrderRejected / CancelRejected reasons (the load's)
    batches: array[int] = field(default_factory=lambda: array("q"))  # (first, last) out_seq of every event batch


class Tap:
    """Subscribes to the journal PUB and the engine's PUB and fills a TapData; ``progress`` (journaled in_seq,
    engine in_seq, engine out_seq) is kept current for whoever samples it."""

    def __init__(self, settings: Settings, base_in_seq: int, symbol: str, accounts: range,
                 progress: Any = None) -> None:  # fmt: skip
        self.symbol = symbol
        self.accounts = accounts
        self.data = TapData(SeqColumn(base_in_seq), SeqColumn(base_in_seq), SeqColumn(base_in_seq),
                            SeqColumn(base_in_seq))  # fmt: skip
        # journaled in_seq, engine in_seq, engine out_seq: a shared array when the tap runs in its own process
        self.progress: Any = progress if progress is not None else [0, 0, 0]
        self.progress[0] = base_in_seq - 1  # journaled before the tap listened
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.journal = self.ctx.socket(zmq.SUB)
        self.events = self.ctx.socket(zmq.SUB)
        for sock, endpoint, topics in ((self.journal, settings.journal_pub_endpoint, (b"",)),
                                       (self.events, settings.events_pub_endpoint, (b"x/", b"h/"))):  # fmt: skip
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 0)  # never drop on this side
            for topic in topics:
                sock.setsockopt(zmq.SUBSCRIBE, topic)
            sock.connect(endpoint)

    def run(self, stop: Callable[[], bool]) -> None:
        poller = zmq.Poller()
        poller.register(self.journal, zmq.POLLIN)
        poller.register(self.events, zmq.POLLIN)
        while not stop():
            ready = dict(poller.poll(50))
            if self.journal in ready:
                self._journal()
            if self.events in ready:
                self._events()

    def _journal(self) -> None:
        recv, stamp, journaled = self.journal.recv, self.data.stamp.set, self.data.journaled.set
        while True:
            try:
                blob = recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            now = time.time_ns()
            batch = _journal_decoder.decode(blob)
            seq = batch.first_in_seq
            for i, ts in enumerate(batch.stamps):
                stamp(seq + i, ts)
                journaled(seq + i, now)
            last = seq + len(batch.stamps) - 1
            self.progress[0] = max(self.progress[0], last)

    def _events(self) -> None:
        recv = self.events.recv_multipart
        d = self.data
        published, last_out, symbol, ours = d.published, d.last_out, self.symbol, self.accounts
        while True:
            try:
                topic, payload = recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            now = time.time_ns()
            if topic == b"h/":
                hb = decode_heartbeat(payload)
                self.progress[1], self.progress[2] = hb.in_seq, hb.out_seq
                continue
            events = decode_events(payload)
            if not events:
                continue
            d.batches.append(events[0].out_seq)
            d.batches.append(events[-1].out_seq)
            seen = 0
            for ev in events:
                s = ev.in_seq
                if s != seen:
                    seen = s
                    if not published.get(s):
                        published.set(s, now)
                last_out.set(s, ev.out_seq)
                if type(ev) is TradeExecuted:
                    if ev.symbol == symbol:
                        d.trades[ev.trade_id] = now
                        d.trade_seq[ev.trade_id] = s
                elif (type(ev) is OrderRejected or type(ev) is CancelRejected) and ev.account in ours:
                    d.refusals[f"{type(ev).__name__} {ev.reason.name}"] += 1

    def close(self) -> None:
        self.journal.close(0)
        self.events.close(0)
        self.ctx.term()


def _tap_main(pipe: Pipe, progress: Sequence[int], settings: Settings, base: int, symbol: str,
              accounts: range) -> None:  # fmt: skip
    tap = Tap(settings, base, symbol, accounts, progress)
    pipe.send("ready")
    tap.run(pipe.poll)  # until the parent says stop
    tap.close()
    pipe.recv()
    pipe.send(tap.data)


class TapProcess:
    """The tap in a process of its own: its reads are timed by a thread that never waits for another's GIL (in one
    process with the WebSocket clients it read late by up to the interpreter's 5 ms switch interval)."""

    def __init__(self, settings: Settings, base_in_seq: int, symbol: str, accounts: range) -> None:
        ctx = mp.get_context("spawn")
        self._progress = ctx.Array("q", 3, lock=False)
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=_tap_main, args=(child, self._progress, settings, base_in_seq, symbol,
                                                          accounts), name="bench-tap", daemon=True)  # fmt: skip
        self.proc.start()
        self.pipe.recv()
        self.pid = self.proc.pid or 0
        self.data: TapData | None = None

    @property
    def journal_in_seq(self) -> int:
        """The sequencer's progress: the last in_seq journaled."""
        return int(self._progress[0])

    @property
    def engine_in_seq(self) -> int:
        """The engine's progress (heartbeat): events of commands up to here are published."""
        return int(self._progress[1])

    @property
    def engine_out_seq(self) -> int:
        return int(self._progress[2])

    def close(self) -> TapData:
        if self.data is None:
            self.pipe.send("stop")
            self.data = self.pipe.recv()
            self.proc.join(5)
        assert self.data is not None
        return self.data


class Timeline:
    """(ns, value) pairs, appended when the value changes: a persister's offset over time."""

    def __init__(self) -> None:
        self.at = array("q")
        self.value = array("q")

    def note(self, now: int, value: int) -> None:
        if not self.value or value != self.value[-1]:
            self.at.append(now)
            self.value.append(value)

    def last(self) -> int:
        return self.value[-1] if self.value else 0


class Watchers(threading.Thread):
    """WebSocket trade-stream clients and the persisters' offsets, in one event loop in a thread."""

    def __init__(self, streams: dict[str, str], symbol: str, redis_url: str, shard: str, pg_url: str) -> None:
        super().__init__(name="bench-watchers", daemon=True)
        self.streams = streams  # client name -> ws://host:port (a feed, or the front door)
        self.path = f"/stream?streams={symbol.lower()}@trade"
        self.prefix = f'{{"stream":"{symbol.lower()}@trade"'.encode()
        self.arrivals: dict[str, array[int]] = {name: array("q") for name in streams}  # pairs: trade id, ns
        self.reconnects: dict[str, int] = dict.fromkeys(streams, 0)
        self.redis_url = redis_url
        self.shard = shard
        self.pg_url = pg_url
        self.pg = Timeline()
        self.mongo = Timeline()
        self.pg_registry = Timeline()
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        tasks = [asyncio.create_task(self._stream(name, url)) for name, url in self.streams.items()]
        tasks += [asyncio.create_task(self._registry()), asyncio.create_task(self._postgres())]
        self.ready.set()
        await self._stopping.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _stream(self, name: str, url: str) -> None:
        out, prefix = self.arrivals[name], self.prefix
        while True:
            try:
                async with connect(url + self.path, max_queue=None, open_timeout=10) as ws:
                    while True:
                        raw = await ws.recv(decode=False)
                        now = time.time_ns()
                        if raw.startswith(prefix):  # the trade id at a known key: no JSON parse per message
                            i = raw.index(b'"t":') + 4
                            out.append(int(raw[i : raw.index(b",", i)]))
                            out.append(now)
            except (ConnectionClosed, InvalidStatus, OSError, TimeoutError):
                self.reconnects[name] += 1  # a feed restarting (chaos): connect again
                await asyncio.sleep(0.2)

    async def _registry(self) -> None:
        r = aioredis.Redis.from_url(self.redis_url, socket_timeout=5)
        key = keys.consumers(self.shard)
        try:
            while True:
                with contextlib.suppress(OSError, aioredis.RedisError):
                    values = await r.hgetall(key)
                    now = time.time_ns()
                    mongo = values.get(b"mongo")
                    if mongo is not None:
                        self.mongo.note(now, int(mongo))
                    pg = values.get(b"postgres")
                    if pg is not None:
                        self.pg_registry.note(now, int(pg))
                await asyncio.sleep(0.005)
        finally:
            await r.aclose()

    async def _postgres(self) -> None:
        while True:
            try:
                conn = await asyncpg.connect(self.pg_url, timeout=5)
                try:
                    while True:
                        value = await conn.fetchval("SELECT out_seq FROM consumer_offsets WHERE consumer = 'postgres'")
                        if value is not None:
                            self.pg.note(time.time_ns(), int(value))
                        await asyncio.sleep(0.005)
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError, TimeoutError):
                await asyncio.sleep(0.2)  # the database restarting, or the table not made yet

    def close(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self.join(10)
