"""Pipeline benchmark: client -> sequencer -> Redis journal -> engine -> events back at the client.

One run of ``python -m bench.pipeline`` (about three minutes) starts a private venue exactly as the pipeline tests
do (tests.harness.Venue: a redis-server with AOF on and ``appendfsync everysec``, ``python -m sequencer`` and
``python -m engine``, ipc sockets in a temporary directory) and measures, in this order:

1. The machine's own limits against that same redis-server, with redis-py as the sequencer uses it: PING and one
   XADD per round trip, 256 XADDs per pipeline, one XADD carrying a 256-command journal batch per round trip; and
   what the sequencer's per-command pyzmq calls and codecs cost in this process.
2. Latency, open loop at a constant 1k/s and 10k/s from one load process: from each command's *scheduled* send
   time (so a late sender cannot hide queueing: coordinated omission corrected) to (a) its acknowledgement and
   (b) the first event it caused, seen on the engine's ``x/`` topic. HDR histograms (hdrhistogram).
3. Throughput: open-loop load at increasing offered rates, each for a few seconds, from one load process by
   default (``--workers``: a DEALER each, pipelining its sends and reading its acks in the same loop). A rate is
   *sustained* when the commands were sent, acknowledged and applied by the engine (its heartbeat ``in_seq``) at
   the offered rate and neither backlog (sent - acknowledged, journaled - engine) was left growing. BUSY answers
   are counted. The ramp stops after two failed rates and then bisects above the highest sustained one.

Other tenants of a shared machine are measured, not assumed away: the script waits for the machine to be quiet
before each step and repeats a step that other processes disturbed.

CPU time of every process (and of the engine's threads) is read from /proc for each step, so the report can say
where the two cores went. The report (bench/reports/pipeline.md) and its plots are written by this script.

The load is realistic order flow on BTCUSDT (config/venue.toml: tick 0.01, lot 0.00001, min notional 5 USDT):
passive limit orders a few ticks from a 100,000.00 USDT mid, cancels of the generator's own resting orders (by
client order id) and crossing LIMIT IOC orders, from thousands of accounts so self-trade prevention rarely fires.
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing as mp
import os
import random
import re
import select
import shlex
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import redis
import zmq
from hdrh.histogram import HdrHistogram
from matplotlib.figure import Figure

from bench.machine import machine_markdown
from client.sequencer import new_source
from sequencer.journal import Journal
from tests.harness import Venue
from wire import keys
from wire.codec import Ack, RawJournalBatch, decode_ack, decode_command, decode_events, decode_heartbeat, encode
from wire.commands import CancelOrder, PlaceOrder
from wire.config import Settings
from wire.enums import AckStatus, OrderType, Side, TimeInForce

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "bench" / "reports"
SYMBOL = "BTCUSDT"
MID = 10_000_000  # ticks of 0.01 USDT: 100,000.00 USDT
SEED = 20_260_101
RESTING_PER_WORKER = 1_500  # open orders each load process keeps on the book (it cancels to stay near this)
ACCOUNTS_PER_WORKER = 5_000
TICK_S = 0.1  # sampling period of the backlogs
SETTLE_S = 1.0  # each throughput step is judged after its first second
BACKLOGGED = 0.25  # a sustained step may have a backlog over 50 ms of load during at most this share of its window
JOURNALED = AckStatus.JOURNALED

# ---------------------------------------------------------------------------------------------------------------
# order flow


class OrderFlow:
    """Deterministic command frames for one load process: passive limits, cancels of its own orders, IOC takers.

    Cancels name orders by client order id, so the flow needs no feedback from the engine; a cancel of an order
    that a taker has filled meanwhile is answered CancelRejected, as it would be for a real client.
    """

    def __init__(self, worker: int, src: str) -> None:
        self.rng = random.Random(SEED + worker)
        self.src = src
        self.req = 0
        self.oids = 0
        self.tag = f"w{worker}-"
        self.first_account = 1 + worker * 100_000
        self.open: list[tuple[int, str]] = []  # (account, client_oid) of orders believed resting
        self.kinds: Counter[str] = Counter()

    def _qty(self) -> int:
        # median ~0.002 BTC (200 USDT), a long tail; at least 10 lots = 10 USDT (min notional is 5)
        return max(10, min(200_000, int(self.rng.lognormvariate(5.3, 1.0))))

    def _account(self) -> int:
        return self.first_account + self.rng.randrange(ACCOUNTS_PER_WORKER)

    def _place(self, side: Side, tif: TimeInForce, price: int) -> bytes:
        self.req += 1
        self.oids += 1
        oid = self.tag + format(self.oids, "x")
        account = self._account()
        if tif is TimeInForce.GTC:
            self.open.append((account, oid))
        cmd = PlaceOrder(self.src, self.req, account, SYMBOL, side, OrderType.LIMIT, tif, price, self._qty(), oid)
        return encode(cmd)

    def next_frame(self) -> bytes:
        rng, open_orders = self.rng, self.open
        r = rng.random()
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        if r < 0.10:  # a taker: LIMIT IOC 1..4 ticks through the mid, so it meets the touch and a level or two
            self.kinds["limit_ioc"] += 1
            through = 1 + rng.randrange(4)
            return self._place(side, TimeInForce.IOC, MID + through if side is Side.BUY else MID - through)
        shift = 0.45 * (RESTING_PER_WORKER - len(open_orders)) / RESTING_PER_WORKER
        p_limit = 0.45 + max(-0.1, min(0.1, shift))
        if r < 0.10 + p_limit or not open_orders:
            self.kinds["limit"] += 1
            depth = min(int(rng.expovariate(0.25)), 50)  # mostly within a few ticks of the touch
            return self._place(side, TimeInForce.GTC, MID - 1 - depth if side is Side.BUY else MID + 1 + depth)
        self.kinds["cancel"] += 1
        i = rng.randrange(len(open_orders))
        account, oid = open_orders[i]
        open_orders[i] = open_orders[-1]
        open_orders.pop()
        self.req += 1
        return encode(CancelOrder(self.src, self.req, account, SYMBOL, 0, oid))

    def frames(self, n: int) -> tuple[int, list[bytes]]:
        """The next ``n`` frames and the request id of the first (request ids are consecutive)."""
        first = self.req + 1
        return first, [self.next_frame() for _ in range(n)]


# ---------------------------------------------------------------------------------------------------------------
# load process


@dataclass(frozen=True, slots=True)
class Plan:
    commands: int
    rate: float
    events: bool  # also follow x/ and time the first event of each command
    quantum_ns: int = 0  # sleep at least this long between sends (0: wake for every command at its time)


@dataclass(slots=True)
class WorkerResult:
    worker: int
    pid: int
    commands: int
    rate: float
    start_ns: int
    statuses: dict[str, int]
    ticks: list[tuple[int, int]]  # (sent, answered) at start + k * TICK_S
    ack_ns: bytes  # array('q'): per command, ack time - scheduled send time (-1: refused or unanswered)
    event_ns: bytes  # array('q'): per command, first event time - scheduled send time (-1: none seen)
    late_sends: int  # commands sent more than 1 ms after their scheduled time
    max_send_lag_ns: int
    kinds: dict[str, int]


def _set_timer_slack(ns: int) -> None:
    """Let select() wake within ``ns`` of its timeout instead of the default 50 us (PR_SET_TIMERSLACK)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(29, ns, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class LoadWorker:
    """One open-loop load process: sends each command at its scheduled time, reads acks (and events) meanwhile.

    A single thread does everything: it sends whatever is due, drains what arrived, then sleeps in select() on the
    sockets' ZeroMQ file descriptors until the next send is due, so an arriving ack is timed when it arrives.
    """

    def __init__(self, worker: int, settings: Settings) -> None:
        self.worker = worker
        self.settings = settings
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.dealer = self.ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.setsockopt(zmq.SNDHWM, 0)  # open loop: never drop or block a send
        self.dealer.setsockopt(zmq.RCVHWM, 0)
        self.dealer.connect(settings.sequencer_endpoint)
        self.flow = OrderFlow(worker, new_source(f"bench-w{worker}"))

    def subscribe(self) -> zmq.Socket[bytes]:
        sub = self.ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"x/")
        sub.connect(self.settings.events_pub_endpoint)
        time.sleep(0.3)  # let the subscription reach the engine's PUB socket
        return sub

    def run(
        self, plan: Plan, first_req: int, frames: list[bytes], start_ns: int, sub: zmq.Socket[bytes] | None
    ) -> WorkerResult:
        n = len(frames)
        interval = 1e9 / plan.rate
        dealer = self.dealer
        send, recv, NOBLOCK = dealer.send, dealer.recv, zmq.NOBLOCK
        clock = time.perf_counter_ns
        ack_at = array("q", bytes(8 * n))
        in_seqs = array("q", bytes(8 * n))
        first_event: dict[int, int] = {}
        statuses: Counter[str] = Counter()
        ticks: list[tuple[int, int]] = []
        tick_ns = int(TICK_S * 1e9)
        next_tick = start_ns
        fds = [int(dealer.getsockopt(zmq.FD))]
        socks = [dealer]
        if sub is not None:
            fds.append(int(sub.getsockopt(zmq.FD)))
            socks.append(sub)
        sent = answered = late = 0
        max_lag = 0
        last_in_seq = 0  # highest in_seq acknowledged
        seen_in_seq = 0  # highest in_seq seen on x/
        deadline = start_ns + int(n * interval) + 30_000_000_000
        quantum = plan.quantum_ns
        send_after = 0
        while True:
            now = clock()
            if sent < n and now >= send_after:
                send_after = now + quantum
                due = int((now - start_ns) / interval) + 1
                due = min(due, n)
                if due > sent:
                    lag = now - start_ns - int(sent * interval)
                    max_lag = max(max_lag, lag)
                    if lag > 1_000_000:
                        late += due - sent
                    while sent < due:
                        send(frames[sent], NOBLOCK)
                        sent += 1
            while True:
                try:
                    frame = recv(NOBLOCK)
                except zmq.Again:
                    break
                t = clock()
                ack = decode_ack(frame)
                i = ack.req - first_req
                if not 0 <= i < n:  # a late answer to an earlier step
                    continue
                answered += 1
                if ack.status is JOURNALED:
                    ack_at[i] = t
                    in_seqs[i] = ack.in_seq
                    last_in_seq = max(last_in_seq, ack.in_seq)
                else:
                    statuses[ack.status.name] += 1
            if sub is not None:
                while True:
                    try:
                        _, payload = sub.recv_multipart(NOBLOCK)
                    except zmq.Again:
                        break
                    t = clock()
                    for ev in decode_events(payload):
                        s = ev.in_seq
                        if s > seen_in_seq:
                            seen_in_seq = s
                            first_event[s] = t
            now = clock()
            while now >= next_tick:
                ticks.append((sent, answered))
                next_tick += tick_ns
            if sent >= n and answered >= n and (sub is None or seen_in_seq >= last_in_seq):
                break
            if now > deadline:
                break
            wait_ns = max(start_ns + int(sent * interval), send_after) - now if sent < n else 5_000_000
            wait_ns = min(wait_ns, next_tick - now)
            if wait_ns > 0:
                if any(int(s.getsockopt(zmq.EVENTS)) & zmq.POLLIN for s in socks):
                    continue
                select.select(fds, [], [], wait_ns / 1e9)
        ticks.append((sent, answered))  # the totals: judge() reads ticks past the end of the loop as these
        statuses["JOURNALED"] = sum(1 for i in range(n) if ack_at[i])
        statuses["UNANSWERED"] = n - answered
        ack_lat = array("q", [-1]) * n
        ev_lat = array("q", [-1]) * n
        for i in range(n):
            if ack_at[i]:
                sched = start_ns + int(i * interval)
                ack_lat[i] = ack_at[i] - sched
                e = first_event.get(in_seqs[i])
                if e is not None:
                    ev_lat[i] = e - sched
        return WorkerResult(
            worker=self.worker,
            pid=os.getpid(),
            commands=n,
            rate=plan.rate,
            start_ns=start_ns,
            statuses=dict(statuses),
            ticks=ticks,
            ack_ns=ack_lat.tobytes(),
            event_ns=ev_lat.tobytes(),
            late_sends=late,
            max_send_lag_ns=max_lag,
            kinds=dict(self.flow.kinds),
        )


def _worker_main(conn: Connection, worker: int, settings: Settings) -> None:
    _set_timer_slack(1_000)
    w = LoadWorker(worker, settings)
    conn.send(os.getpid())
    while True:
        plan = conn.recv()
        if plan is None:
            break
        assert isinstance(plan, Plan)
        w.flow.kinds.clear()
        first_req, frames = w.flow.frames(plan.commands)
        sub = w.subscribe() if plan.events else None
        conn.send("ready")
        start_ns = conn.recv()
        result = w.run(plan, first_req, frames, start_ns, sub)
        if sub is not None:
            sub.close(0)
        conn.send(result)
    w.dealer.close(0)
    w.ctx.term()


class LoadProcess:
    """The main process's handle on one load process."""

    def __init__(self, worker: int, settings: Settings) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, worker, settings), name=f"load-{worker}", daemon=True)
        self.proc.start()
        self.pid: int = self.conn.recv()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


# ---------------------------------------------------------------------------------------------------------------
# measuring the venue from outside: CPU from /proc, progress from heartbeats and the journal

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _ticks(stat_path: str, children: bool = False) -> int:
    with open(stat_path, "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks + int(fields[13]) + int(fields[14]) if children else ticks  # + cutime + cstime (reaped children)


def _tree_ticks(pid: int) -> int:
    """A process with its children, live (e.g. Redis's AOF rewrite) or reaped."""
    ticks = _ticks(f"/proc/{pid}/stat", children=True)
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(k) for k in f.read().split()]
    except FileNotFoundError:
        kids = []
    for kid in kids:
        try:
            ticks += _tree_ticks(kid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return ticks


def _idle_seconds() -> float:
    """Idle time of all CPUs together since boot (/proc/uptime). The kernel keeps idle time exactly, while the
    busy fields of /proc/stat are sampled at the tick, which a tickless guest under-counts badly."""
    with open("/proc/uptime") as f:
        return float(f.read().split()[1])


Sample = tuple[float, dict[str, int], float]  # (monotonic time, ticks per role, idle seconds)


class CpuMeter:
    """CPU time per role: the sequencer's and the engine's threads apart, Redis, the load, this process."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def _split(self, role: str, pid: int, out: dict[str, int]) -> None:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            return
        for tid in tids:
            path = f"/proc/{pid}/task/{tid}"
            try:
                with open(path + "/comm") as f:
                    comm = f.read().strip()
                ticks = _ticks(path + "/stat")
            except (FileNotFoundError, ProcessLookupError):
                continue
            if comm.startswith("ZMQbg"):
                name = f"{role} zmq I/O"
            elif int(tid) == pid:
                name = "engine matching" if role == "engine" else role
            else:
                name = f"{role} writer" if role == "engine" else f"{role} other"
            out[name] = out.get(name, 0) + ticks

    def sample(self) -> Sample:
        out: dict[str, int] = {}
        for role, pid in self.pids.items():
            if role in ("sequencer", "engine"):
                self._split(role, pid, out)
            elif role.startswith("load"):
                self._split("load", pid, out)
            else:
                try:  # Redis with its children (AOF rewrites); this script without its own (the venue, the load)
                    ticks = _tree_ticks(pid) if role == "redis" else _ticks(f"/proc/{pid}/stat")
                except FileNotFoundError:
                    continue
                out[role] = out.get(role, 0) + ticks
        return time.monotonic(), out, _idle_seconds()

    @staticmethod
    def percent(a: Sample, b: Sample) -> tuple[dict[str, float], float]:
        """Per role, % of one core over the interval; and the whole machine's busy % (of all cores)."""
        seconds = b[0] - a[0]
        roles = {k: 100.0 * (v - a[1].get(k, 0)) / CLK_TCK / seconds for k, v in b[1].items()}
        return roles, _busy_percent(seconds, b[2] - a[2])


class Monitor:
    """The engine's progress (heartbeat in_seq, topic h/) and the journal's end (last entry in Redis)."""

    def __init__(self, settings: Settings, r: redis.Redis, shard: str) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.RCVHWM, 100_000)  # read every 0.1 s: never let old heartbeats crowd out new ones
        self.sub.setsockopt(zmq.SUBSCRIBE, b"h/")
        self.sub.connect(settings.events_pub_endpoint)
        self.journal = Journal(r, keys.journal(shard))
        self._in_seq = 0

    def engine_in_seq(self) -> int:
        while True:
            try:
                frames = self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return self._in_seq
            self._in_seq = max(self._in_seq, decode_heartbeat(frames[-1]).in_seq)

    def journaled(self) -> int:
        return self.journal.last_in_seq()

    def forks(self) -> tuple[int, int]:
        """Forks Redis made so far (AOF rewrites: the harness's Redis saves no RDB snapshots), and how long the
        latest one blocked Redis (µs)."""
        stats = self.journal.r.info("stats")
        return int(stats.get("total_forks", 0)), int(stats.get("latest_fork_usec", 0))

    def close(self) -> None:
        self.sub.close(0)
        self.ctx.term()


# ---------------------------------------------------------------------------------------------------------------
# 1. the machine's own limits


@dataclass(frozen=True, slots=True)
class RedisLimit:
    name: str
    round_trips_per_s: float
    commands_per_s: float

    @property
    def us_per_round_trip(self) -> float:
        return 1e6 / self.round_trips_per_s


def redis_limits(url: str, seconds: float) -> list[RedisLimit]:
    """Against the venue's own redis-server (AOF on, everysec), with redis-py, from this process."""
    r = redis.Redis.from_url(url)
    key = "bench:pipeline:xadd"
    _, frames = OrderFlow(99, "bench-redis").frames(256)
    stamps = [time.time_ns()] * 256
    one = encode(RawJournalBatch(1, stamps[:1], [msgspec.Raw(frames[0])]))
    batch = encode(RawJournalBatch(1, stamps, [msgspec.Raw(f) for f in frames]))
    results: list[RedisLimit] = []

    def timed(name: str, per_round_trip: int, call: Any) -> None:
        call()  # connect, warm up
        n = 0
        start = time.perf_counter()
        end = start + seconds
        while True:
            for _ in range(20):
                call()
            n += 20
            now = time.perf_counter()
            if now >= end:
                break
        rts = n / (now - start)
        results.append(RedisLimit(name, rts, rts * per_round_trip))

    def pipelined() -> None:
        pipe = r.pipeline(transaction=False)
        for _ in range(256):
            pipe.xadd(key, {b"b": one})
        pipe.execute()

    timed("PING, one per round trip", 1, r.ping)
    timed("XADD of one command, one per round trip", 1, lambda: r.xadd(key, {b"b": one}))
    timed("256 XADDs of one command each, one pipeline per round trip", 256, pipelined)
    timed("XADD of one 256-command batch (one msgpack blob) per round trip", 256, lambda: r.xadd(key, {b"b": batch}))
    r.delete(key)
    r.close()
    return results


@dataclass(frozen=True, slots=True)
class PlumbingCost:
    name: str
    us: float  # microseconds of this process's time per operation


def plumbing_costs(directory: Path, n: int = 50_000, repeats: int = 3) -> list[PlumbingCost]:
    """What the per-command Python plumbing of the sequencer costs, one operation at a time, on a private
    ROUTER <- DEALER pair over ipc in this process: the same pyzmq calls and msgspec codecs the sequencer makes
    for every command (and the engine's writer for every topic message). Best of ``repeats``."""
    runs = [_plumbing_once(directory, n) for _ in range(repeats)]
    return [PlumbingCost(first.name, min(r[i].us for r in runs)) for i, first in enumerate(runs[0])]


def _plumbing_once(directory: Path, n: int) -> list[PlumbingCost]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router, dealer = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    for sock in (router, dealer):
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
    endpoint = f"ipc://{directory}/plumbing"
    router.bind(endpoint)
    dealer.connect(endpoint)
    _, frames = OrderFlow(98, "bench-plumbing").frames(n)
    ack = encode(Ack(1, JOURNALED, 1))
    results: list[PlumbingCost] = []

    def queued() -> None:
        for f in frames:
            dealer.send(f)
        while router.poll(0) == 0:
            time.sleep(0.01)
        time.sleep(0.3)  # everything is in the router's queue

    def timed(name: str, loop: Any) -> None:
        t = time.perf_counter()
        loop()
        results.append(PlumbingCost(name, (time.perf_counter() - t) / n * 1e6))

    def drain() -> None:
        got = 0
        while got < n and dealer.poll(2000):
            dealer.recv()
            got += 1

    queued()
    idents: list[bytes] = []
    timed("`recv_multipart(NOBLOCK)` of one command (identity + body)", lambda: idents.extend(
        router.recv_multipart(zmq.NOBLOCK)[0] for _ in range(n)))  # fmt: skip
    timed("`send_multipart([identity, ack])` of one ack", lambda: [router.send_multipart([i, ack]) for i in idents])
    drain()
    more, send = int(zmq.SNDMORE), router.send
    timed("the same ack as `send(identity, SNDMORE)` + `send(ack)`, int flag", lambda: [
        (send(i, more), send(ack)) for i in idents])  # fmt: skip
    drain()
    queued()
    recv, get, rcvmore, noblock = router.recv, router.get, int(zmq.RCVMORE), int(zmq.NOBLOCK)

    def recv_plain() -> None:
        for _ in range(n):
            recv(noblock)
            recv(noblock)
            get(rcvmore)

    timed("the same command as `recv` + `recv` + one `get(RCVMORE)` (frame count check)", recv_plain)
    timed("one `getsockopt(RCVMORE)`", lambda: [router.getsockopt(zmq.RCVMORE) for _ in range(n)])
    timed("`decode_command` (typed msgspec decode) of one command", lambda: [decode_command(f) for f in frames])
    timed("`encode(Ack(...))` of one ack", lambda: [encode(Ack(i, JOURNALED, i)) for i in range(n)])
    router.close(0)
    dealer.close(0)
    ctx.term()
    return results


# ---------------------------------------------------------------------------------------------------------------
# 2 and 3. open-loop steps


@dataclass(slots=True)
class StepResult:
    label: str
    offered: float
    duration: float
    results: list[WorkerResult]
    samples: list[tuple[int, int, int]]  # (tick index, journaled in_seq, engine in_seq), every TICK_S
    cpu: dict[str, float]  # % of one core, per role, over the step's window
    machine_busy: float  # % of all cores
    drain_s: float  # after the window: until every ack arrived and the engine reached the journal's end
    others: float  # % of one core used by processes outside the benchmark (machine busy - all roles)
    forks: int  # AOF rewrites Redis started during the step
    fork_ms: float  # how long the last of them blocked Redis (its fork), ms
    in_seq0: int = 0
    repeats: int = 0  # times the step was run again because other processes disturbed it
    # judged (see judge())
    sent_rate: float = 0.0
    answered_rate: float = 0.0
    engine_rate: float = 0.0
    in_flight_end: int = 0
    engine_lag_end: int = 0
    in_flight_max: int = 0
    engine_lag_max: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    late_sends: int = 0
    max_send_lag_ms: float = 0.0
    ack_pct: dict[str, float] = field(default_factory=dict)  # ms, commands scheduled after SETTLE_S
    backlogged: float = 0.0  # share of the window's samples with a backlog over 50 ms of load
    sustained: bool = False
    why: str = ""


def run_step(
    label: str,
    rate: float,
    duration: float,
    loads: Sequence[LoadProcess],
    monitor: Monitor,
    meter: CpuMeter,
    events: bool = False,
    quantum_us: float = 0.0,
) -> StepResult:
    per = rate / len(loads)
    plan = Plan(commands=int(per * duration), rate=per, events=events, quantum_ns=int(quantum_us * 1000))
    for lp in loads:
        lp.conn.send(plan)
    for lp in loads:
        if lp.conn.recv() != "ready":
            raise RuntimeError("load process out of step")
    in_seq0 = monitor.engine_in_seq()
    forks0, _ = monitor.forks()
    start_ns = time.perf_counter_ns() + 200_000_000
    for lp in loads:
        lp.conn.send(start_ns)
    tick_ns = int(TICK_S * 1e9)
    window_ticks = round(duration / TICK_S)
    samples: list[tuple[int, int, int]] = []
    cpu0 = None
    k = 0
    while k <= window_ticks:
        wait = (start_ns + k * tick_ns - time.perf_counter_ns()) / 1e9
        if wait > 0:
            time.sleep(wait)
        if k == 0:
            cpu0 = meter.sample()
        samples.append((k, monitor.journaled(), monitor.engine_in_seq()))
        k += 1
    assert cpu0 is not None
    cpu1 = meter.sample()
    cpu, busy = CpuMeter.percent(cpu0, cpu1)
    window_end = time.monotonic()
    results: dict[int, WorkerResult] = {}
    while True:
        for i, lp in enumerate(loads):
            if i not in results and lp.conn.poll(0):
                results[i] = lp.conn.recv()
        if len(results) == len(loads):
            journaled = monitor.journaled()
            if monitor.engine_in_seq() >= journaled:
                break
        if time.monotonic() - window_end > 90:
            raise RuntimeError("the venue did not drain within 90 s")
        time.sleep(0.02)
    forks1, fork_us = monitor.forks()
    step = StepResult(
        label=label,
        offered=rate,
        duration=duration,
        results=[results[i] for i in range(len(loads))],
        samples=samples,
        cpu=cpu,
        machine_busy=busy,
        drain_s=time.monotonic() - window_end,
        others=max(0.0, busy * (os.cpu_count() or 1) - sum(cpu.values())),
        forks=forks1 - forks0,
        fork_ms=fork_us / 1000 if forks1 > forks0 else 0.0,
        in_seq0=in_seq0,
    )
    judge(step)
    return step


DISTURBED = 25.0  # % of one core used by other processes during a step: the step is repeated once it is quiet


def wait_quiet(limit_s: float = 60.0) -> float:
    """Wait (bounded) until the machine is nearly idle: the benchmark's venue idles between steps, so anything
    busy now is another tenant of this shared machine. Returns the last busy % seen (of all cores)."""
    deadline = time.monotonic() + limit_s
    busy = background_busy(0.5)
    while busy > 10.0 and time.monotonic() < deadline:
        _say(f"  machine {busy:.0f}% busy with other processes; waiting for quiet")
        busy = background_busy(2.0)
    return busy


def quiet_step(
    label: str,
    rate: float,
    duration: float,
    loads: Sequence[LoadProcess],
    monitor: Monitor,
    meter: CpuMeter,
    events: bool = False,
    quantum_us: float = 0.0,
    retries: int = 2,
) -> StepResult:
    """run_step, repeated (at most ``retries`` times) when other processes took a share of the CPU meanwhile."""
    wait_quiet()
    step = run_step(label, rate, duration, loads, monitor, meter, events, quantum_us)
    repeats = 0
    while step.others > DISTURBED and repeats < retries:
        repeats += 1
        _say(f"  other processes used {step.others:.0f}% of a core during the step: repeating it")
        wait_quiet()
        step = run_step(label, rate, duration, loads, monitor, meter, events, quantum_us)
    step.repeats = repeats
    return step


def latencies_ms(results: Sequence[WorkerResult], attr: str, skip_s: float) -> list[float]:
    """Latencies (ms) of the commands scheduled at least ``skip_s`` after the start, answered or seen."""
    parts = []
    for res in results:
        lat = np.frombuffer(getattr(res, attr), dtype=np.int64)
        skip = int(skip_s * res.rate)
        lat = lat[skip:]
        parts.append(lat[lat >= 0])
    values = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return [float(v) / 1e6 for v in values]


def judge(step: StepResult) -> None:
    """Achieved rates over [SETTLE_S, end of window]; backlogs; latency; the verdict."""
    k0, k1 = round(SETTLE_S / TICK_S), round(step.duration / TICK_S)
    span = (k1 - k0) * TICK_S

    def at(res: WorkerResult, k: int) -> tuple[int, int]:
        return res.ticks[min(k, len(res.ticks) - 1)]

    sent = [sum(at(r, k)[0] for r in step.results) for k in range(k1 + 1)]
    answered = [sum(at(r, k)[1] for r in step.results) for k in range(k1 + 1)]
    step.sent_rate = (sent[k1] - sent[k0]) / span
    step.answered_rate = (answered[k1] - answered[k0]) / span
    step.engine_rate = (step.samples[k1][2] - step.samples[k0][2]) / span
    in_flight = [s - a for s, a in zip(sent, answered, strict=True)]
    lag = [max(0, j - e) for _, j, e in step.samples]
    tail = range(max(k0, k1 - 4), k1 + 1)  # the last 0.5 s: a backlog that stays up there is growing, not a blip
    step.in_flight_end = min(in_flight[k] for k in tail)
    step.engine_lag_end = max(0, min(lag[k] for k in tail))
    step.in_flight_max, step.engine_lag_max = max(in_flight[k0:]), max(lag[k0:])
    statuses: Counter[str] = Counter()
    for r in step.results:
        statuses.update(r.statuses)
    step.statuses = dict(statuses)
    step.late_sends = sum(r.late_sends for r in step.results)
    step.max_send_lag_ms = max(r.max_send_lag_ns for r in step.results) / 1e6
    lat = np.array(latencies_ms(step.results, "ack_ns", SETTLE_S))
    if len(lat):
        p50, p99, p999 = np.percentile(lat, [50, 99, 99.9])
        step.ack_pct = {"p50": float(p50), "p99": float(p99), "p99.9": float(p999), "max": float(lat.max())}
    offered = step.offered
    limit = max(500.0, 0.05 * offered)  # 50 ms of load
    reasons = []
    if step.sent_rate < 0.97 * offered:
        reasons.append(f"load sent only {step.sent_rate:,.0f}/s")
    if step.answered_rate < 0.97 * offered:
        reasons.append(f"acks {step.answered_rate:,.0f}/s")
    if step.engine_rate < 0.97 * offered:
        reasons.append(f"engine {step.engine_rate:,.0f}/s")
    if step.in_flight_end > limit:
        reasons.append(f"{step.in_flight_end:,} unacknowledged at the end")
    if step.engine_lag_end > limit:
        reasons.append(f"engine {step.engine_lag_end:,} behind the journal at the end")
    over = [k for k in range(k0, k1 + 1) if in_flight[k] > limit or lag[k] > limit]
    step.backlogged = len(over) / (k1 - k0 + 1)
    if step.backlogged > BACKLOGGED:
        reasons.append(f"a backlog over 50 ms of load during {100 * step.backlogged:.0f}% of the window")
    refused = {k: v for k, v in statuses.items() if k not in ("JOURNALED", "UNANSWERED") and v}
    if refused:
        reasons.append("refused: " + ", ".join(f"{k} {v:,}" for k, v in refused.items()))
    step.sustained = not reasons
    step.why = "; ".join(reasons)


# ---------------------------------------------------------------------------------------------------------------
# latency (HDR)

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True, slots=True)
class LatencyRow:
    rate: float
    what: str  # "ack" or "first event"
    count: int
    missing: int  # commands of the measured span without an ack (refused/unanswered) or without an event
    pct_ms: dict[str, float]  # "p50", "p90", "p99", "p99.9", "max"


def hdr_row(step: StepResult, attr: str, what: str) -> LatencyRow:
    hist = HdrHistogram(1, 60_000_000, 3)  # microseconds, 1 us .. 60 s, 3 significant digits
    values = latencies_ms(step.results, attr, SETTLE_S)
    for v in values:
        hist.record_value(max(1, round(v * 1000)))
    measured = sum(r.commands - int(SETTLE_S * r.rate) for r in step.results)
    pct = {f"p{p:g}": hist.get_value_at_percentile(p) / 1000 for p in PERCENTILES}
    pct["max"] = hist.get_max_value() / 1000
    return LatencyRow(step.offered, what, len(values), measured - len(values), pct)


# ---------------------------------------------------------------------------------------------------------------
# the run


@dataclass(slots=True)
class Run:
    args: argparse.Namespace
    started: str
    seconds: float = 0.0
    background_busy: float = 0.0  # % of all cores busy before the venue started
    redis: list[RedisLimit] = field(default_factory=list)
    redis_info: dict[str, str] = field(default_factory=dict)
    plumbing: list[PlumbingCost] = field(default_factory=list)
    frame_bytes: float = 0.0  # mean size of a command frame the load sends
    latency: list[StepResult] = field(default_factory=list)
    latency_rows: list[LatencyRow] = field(default_factory=list)
    ramp: list[StepResult] = field(default_factory=list)
    workers: int = 0


def _busy_percent(seconds: float, idle: float) -> float:
    cpus = os.cpu_count() or 1
    return max(0.0, min(100.0, 100.0 * (1.0 - idle / (seconds * cpus))))


def background_busy(seconds: float = 2.0) -> float:
    t, idle = time.monotonic(), _idle_seconds()
    time.sleep(seconds)
    return _busy_percent(time.monotonic() - t, _idle_seconds() - idle)


def highest_sustained(steps: Sequence[StepResult]) -> StepResult | None:
    """The highest rate sustained with every lower rate tried sustained too (a rate that passes above one that
    failed is luck on a drifting machine, not a capacity)."""
    best = None
    for s in sorted(steps, key=lambda s: s.offered):
        if not s.sustained:
            break
        best = s
    return best


def execute(args: argparse.Namespace) -> Run:
    run = Run(args=args, started=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), workers=args.workers)
    t0 = time.monotonic()
    run.background_busy = background_busy()
    with tempfile.TemporaryDirectory(prefix="mercury-bench-") as tmp:
        venue = Venue(Path(tmp))
        venue.start()
        loads: list[LoadProcess] = []
        r = venue.r()
        monitor = Monitor(venue.settings, r, venue.shard)
        try:
            wait_quiet()
            _say("redis limits")
            run.redis = redis_limits(venue.redis.url, args.redis_seconds)
            _say("plumbing costs")
            _, sample = OrderFlow(97, new_source("bench-w0")).frames(10_000)
            run.frame_bytes = sum(map(len, sample)) / len(sample)
            run.plumbing = plumbing_costs(Path(tmp))
            info = r.info()
            run.redis_info = {k: str(info.get(k, "?")) for k in ("redis_version", "aof_enabled", "appendfsync")}
            run.redis_info["appendfsync"] = str(r.config_get("appendfsync").get("appendfsync", "?"))
            loads = [LoadProcess(i, venue.settings) for i in range(args.workers)]
            assert venue.sequencer.proc is not None and venue.engine.proc is not None and venue.redis.proc is not None
            pids = {
                "sequencer": venue.sequencer.proc.pid,
                "engine": venue.engine.proc.pid,
                "redis": venue.redis.proc.pid,
                "bench (monitor)": os.getpid(),
            }
            pids.update({f"load-{i}": lp.pid for i, lp in enumerate(loads)})
            meter = CpuMeter(pids)
            _say("warm-up")
            q = args.send_quantum_us
            run_step("warm-up", 5_000, 2.0, loads, monitor, meter, quantum_us=q)
            for rate in args.latency_rates:
                _say(f"latency at {rate:,.0f}/s")
                step = quiet_step(
                    f"latency {rate:,.0f}/s",
                    rate,
                    SETTLE_S + args.latency_seconds,
                    loads[:1],
                    monitor,
                    meter,
                    events=True,
                )
                run.latency.append(step)
                run.latency_rows.append(hdr_row(step, "ack_ns", "ack"))
                run.latency_rows.append(hdr_row(step, "event_ns", "first event"))
            failures = 0
            for rate in args.rates:
                _say(f"throughput at {rate:,.0f}/s")
                step = quiet_step(f"{rate:,.0f}/s", rate, args.step_seconds, loads, monitor, meter, quantum_us=q)
                run.ramp.append(step)
                _say(f"  -> {'sustained' if step.sustained else 'NOT sustained: ' + step.why}")
                failures = 0 if step.sustained else failures + 1
                if failures >= 2:
                    break
            # refine: bisect between the highest sustained rate and the lowest one above it that was not
            for _ in range(args.refine):
                best = highest_sustained(run.ramp)
                above = [s.offered for s in run.ramp if not s.sustained and (best is None or s.offered > best.offered)]
                if best is None or not above:
                    break
                rate = round((best.offered + min(above)) / 2 / 1000) * 1000
                if rate in (best.offered, min(above)):
                    break
                _say(f"throughput at {rate:,.0f}/s (refining)")
                step = quiet_step(f"{rate:,.0f}/s", rate, args.step_seconds, loads, monitor, meter, quantum_us=q)
                run.ramp.append(step)
                _say(f"  -> {'sustained' if step.sustained else 'NOT sustained: ' + step.why}")
            run.ramp.sort(key=lambda s: s.offered)
            info = r.info()
            for k in ("total_forks", "aof_rewrites", "used_memory_human", "aof_current_size"):
                run.redis_info[k] = str(info.get(k, "?"))
        finally:
            for lp in loads:
                lp.stop()
            monitor.close()
            r.close()
            venue.stop()
    run.seconds = time.monotonic() - t0
    return run


def _say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# report

CPU_ROLES = (
    "sequencer",
    "sequencer zmq I/O",
    "engine matching",
    "engine writer",
    "engine zmq I/O",
    "redis",
    "load",
    "load zmq I/O",
    "bench (monitor)",
)


def _k(rate: float) -> str:
    return f"{rate / 1000:g}k"


def _ms(v: float) -> str:
    return f"{v:.2f}" if v < 10 else f"{v:,.0f}"


def _cmd_line() -> str:
    return shlex.join(["python", "-m", "bench.pipeline", *sys.argv[1:]])


def per_command_us(step: StepResult) -> dict[str, float]:
    """CPU microseconds per acknowledged command, by role, over the step's window."""
    rate = max(1.0, step.answered_rate)
    return {role: pct * 1e4 / rate for role, pct in step.cpu.items()}


def _group_us(us: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in us.items() if k.startswith(prefix))


def engine_core_figure() -> tuple[float, str] | None:
    """The engine core's decode + apply rate for 1 symbol (commands/s) from bench/reports/engine-core.md."""
    path = REPORTS / "engine-core.md"
    if not path.exists():
        return None
    m = re.search(r"\*\*1 symbol\*\*: decode \+ apply \*\*([\d,.]+)(k?) commands/s\*\*", path.read_text())
    if m is None:
        return None
    value = float(m.group(1).replace(",", "")) * (1000 if m.group(2) else 1)
    return value, m.group(0).replace("*", "")


def _compare(a: float, b: float) -> str:
    if a > 1.1 * b:
        return "more than"
    return "as much as" if a >= 0.9 * b else "less than"


def _source(path: str) -> str:
    try:
        return (REPO / path).read_text()
    except OSError:
        return ""


def _plumbing(run: Run, starts: str) -> float:
    for p in run.plumbing:
        if p.name.startswith(starts):
            return p.us
    return 0.0


def render(run: Run) -> str:
    args = run.args
    best = highest_sustained(run.ramp)
    ncpu = os.cpu_count() or 1
    out: list[str] = []
    add = out.append
    add("# Pipeline benchmark: client -> sequencer -> Redis journal -> engine -> events")
    add("")
    add(
        f"Written by `bench/pipeline.py` on {run.started}, from one run of {run.seconds:.0f} s: do not edit by "
        "hand, run it again. Every figure comes from that one run against one venue (tests.harness.Venue: "
        "redis-server with AOF on and `appendfsync everysec`, `python -m sequencer`, `python -m engine`, ipc "
        "sockets), so the figures can be read against each other."
    )
    add("")
    add("```sh")
    add(_cmd_line())
    add("```")
    add("")
    add("## Summary")
    add("")
    if best is not None:
        verdict = "met" if best.offered >= 50_000 else "**missed**"
        add(
            f"- **Highest sustained rate: {best.offered:,.0f} commands/s** ({best.answered_rate:,.0f}/s "
            f"acknowledged, {best.engine_rate:,.0f}/s applied by the engine, no backlog left, no BUSY). "
            f"Target 50,000/s: {verdict}."
        )
    else:
        add("- **No offered rate was sustained** (see the throughput table).")
    lucky = [s for s in run.ramp if s.sustained and best is not None and s.offered > best.offered]
    if lucky:
        add(
            "- Above the first failed rate, "
            + ", ".join(f"{s.offered:,.0f}/s" for s in lucky)
            + " passed too: on this drifting machine a rate that passes only above one that failed is not counted."
        )
    for row in run.latency_rows:
        p = row.pct_ms
        target = ""
        if row.what == "ack" and row.rate == 10_000:
            target = f" Target p99 < 2 ms: {'met' if p['p99'] < 2 else '**missed**'}."
        add(
            f"- Latency at {row.rate:,.0f}/s to {row.what}: p50 {_ms(p['p50'])} ms, p99 **{_ms(p['p99'])} ms**, "
            f"p99.9 {_ms(p['p99.9'])} ms, max {_ms(p['max'])} ms.{target}"
        )
    if run.redis:
        add(
            "- Redis in the same run: "
            + "; ".join(f"{lim.name}: {lim.commands_per_s:,.0f} commands/s" for lim in run.redis)
            + "."
        )
    if best is not None:
        us = per_command_us(best)
        add(
            f"- At {best.offered:,.0f}/s a command costs {sum(us.values()):.0f} µs of CPU in all (sequencer "
            f"{_group_us(us, 'sequencer'):.1f}, engine {_group_us(us, 'engine'):.1f}, Redis {us.get('redis', 0):.1f}"
            f", load generator {_group_us(us, 'load'):.1f}) and the machine was {best.machine_busy:.0f}% busy: the "
            f"{ncpu} cores, shared by every process of the pipeline and its load, are what runs out (section 4)."
        )
    add("")
    add("## Machine")
    add("")
    add(machine_markdown().rstrip("\n"))
    rv = run.redis_info
    add(
        f"| redis-server | {rv.get('redis_version', '?')}, AOF {'on' if rv.get('aof_enabled') == '1' else 'off'}, "
        f"appendfsync {rv.get('appendfsync', '?')}; at the end: {rv.get('used_memory_human', '?')} used, AOF "
        f"{int(rv.get('aof_current_size', '0') or 0) / 2**20:,.0f} MiB, {rv.get('total_forks', '?')} fork(s) "
        "(AOF rewrites) during the run |"
    )
    add(f"| pyzmq / libzmq / redis-py | {zmq.__version__} / {zmq.zmq_version()} / {redis.__version__} |")
    add(
        f"| load | {run.workers} load process(es), open loop, one DEALER each; throughput steps send what is due "
        f"at most every {args.send_quantum_us:g} µs, latency runs send every command at its own time |"
    )
    add(f"| CPU busy before the venue started | {run.background_busy:.0f}% of all cores |")
    add("")
    add(
        "This is a shared virtual machine: its speed drifts between runs (Redis PING round trips measured 40 to 150 "
        "µs in different runs on the same day), so compare figures within this report, not across runs. The script "
        "waits for the machine to be quiet before each step, measures what other processes used during it (column "
        f"*others* below) and repeats a step once if they took more than {DISTURBED:.0f}% of a core."
    )
    add("")
    add("## 1. The machine's own limits")
    add("")
    add("Against the venue's own redis-server, with redis-py as the sequencer uses it, from the benchmark process:")
    add("")
    add("| operation | round trips/s | µs per round trip | commands/s |")
    add("| --- | ---: | ---: | ---: |")
    for lim in run.redis:
        add(f"| {lim.name} | {lim.round_trips_per_s:,.0f} | {lim.us_per_round_trip:,.1f} | {lim.commands_per_s:,.0f} |")
    add("")
    add(
        f"A command is the frame the load sends (a BTCUSDT order or cancel, {run.frame_bytes:.0f} bytes on "
        "average); the batch is a `RawJournalBatch` of 256 of them, exactly what the sequencer writes. Journaling "
        "one batch per round trip, Redis is far from any limit met below."
    )
    add("")
    add(
        "The Python plumbing every command goes through in the sequencer (the same pyzmq calls on a private "
        "ROUTER <- DEALER pair over ipc, and the same codecs), µs per operation in one process:"
    )
    add("")
    add("| operation | µs |")
    add("| --- | ---: |")
    for cost in run.plumbing:
        add(f"| {cost.name} | {cost.us:.2f} |")
    add("")
    add(
        f"## 2. Latency, open loop at a constant rate ({args.latency_seconds:g} s measured after {SETTLE_S:g} s "
        "warm-up, one load process)"
    )
    add("")
    add(
        "From each command's *scheduled* send time (corrected for coordinated omission: a sender that falls "
        "behind adds its delay to the latency) to (a) its acknowledgement (journaled in Redis) at the client and "
        "(b) the first event it caused as the client receives it on the engine's `x/` topic (applied by the "
        "engine, written to the events stream, published). HDR histogram, 3 significant digits, ms."
    )
    add("")
    add("| offered | to | samples | p50 | p90 | p99 | p99.9 | max | missing |")
    add("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in run.latency_rows:
        p = row.pct_ms
        add(
            f"| {row.rate:,.0f}/s | {row.what} | {row.count:,} | {_ms(p['p50'])} | {_ms(p['p90'])} | "
            f"{_ms(p['p99'])} | {_ms(p['p99.9'])} | {_ms(p['max'])} | {row.missing:,} |"
        )
    add("")
    for step in run.latency:
        add(
            f"- {step.label}: acknowledged {step.answered_rate:,.0f}/s, engine {step.engine_rate:,.0f}/s; the load "
            f"sent {step.late_sends:,} commands more than 1 ms late (worst {step.max_send_lag_ms:.1f} ms); machine "
            f"{step.machine_busy:.0f}% busy."
        )
    add("")
    add("![latency](pipeline-latency.png)")
    add("")
    add(f"## 3. Throughput: open-loop steps of {args.step_seconds:g} s")
    add("")
    add(
        f"Rates are taken from {SETTLE_S:g} s into each step to its end. *Sustained*: sent, acknowledged and "
        "applied (engine heartbeat `in_seq`) at >= 97% of the offered rate, neither backlog above max(500, 50 ms "
        f"of load) at the end (the lowest of the last 0.5 s, so that a blip is not taken for growth) nor during "
        f"more than {100 * BACKLOGGED:.0f}% of the window (*backlogged*, sampled every 0.1 s: a queue that builds "
        "up and drains again means the step ran at its limit), no command refused. In flight = sent - "
        "acknowledged; engine lag = journaled `in_seq` - engine heartbeat `in_seq`. Ack latency is from the "
        "scheduled send time here too. The ramp stops after two failed steps, then bisects between the highest "
        "sustained rate and the next one."
    )
    add("")
    add(
        "| offered/s | sent/s | acked/s | engine/s | in flight end (max) | engine lag end (max) | backlogged | "
        "BUSY | ack p50 ms | ack p99 ms | drain s | AOF rewrites | sustained |"
    )
    add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for s in run.ramp:
        a = s.ack_pct
        verdict = "yes" if s.sustained else "no: " + s.why
        if s.repeats:
            verdict += f" (repeated {s.repeats}x: other processes)"
        add(
            f"| {s.offered:,.0f} | {s.sent_rate:,.0f} | {s.answered_rate:,.0f} | {s.engine_rate:,.0f} | "
            f"{s.in_flight_end:,} ({s.in_flight_max:,}) | {s.engine_lag_end:,} ({s.engine_lag_max:,}) | "
            f"{100 * s.backlogged:.0f}% | {s.statuses.get('BUSY', 0):,} | {_ms(a.get('p50', 0))} | "
            f"{_ms(a.get('p99', 0))} | {s.drain_s:.1f} | "
            + (f"{s.forks} (fork {s.fork_ms:.0f} ms)" if s.forks else "0")
            + f" | {verdict} |"
        )
    add("")
    add("![achieved vs offered, and CPU per step](pipeline.png)")
    add("")
    add(f"### Where the CPU goes (% of one core over each step's window; {ncpu} cores = {100 * ncpu}%)")
    add("")
    add("| offered/s | " + " | ".join(CPU_ROLES) + " | others | machine busy |")
    add("| ---: | " + " | ".join("---:" for _ in CPU_ROLES) + " | ---: | ---: |")
    for s in [*run.latency, *run.ramp]:
        name = f"{s.offered:,.0f}" + (" (latency run)" if s in run.latency else "")
        add(
            f"| {name} | "
            + " | ".join(f"{s.cpu.get(role, 0):.0f}" for role in CPU_ROLES)
            + f" | {s.others:.0f} | {s.machine_busy:.0f}% |"
        )
    add("")
    add(
        "*sequencer*, *engine matching*, *load*: the processes' main threads (the engine's matching thread is "
        "pinned to one core); *engine writer*: the engine's event-writer thread (events-stream XADDs, per-topic "
        "encoding and PUB sends, heartbeats), which shares the engine process's GIL with the matching thread; "
        "*zmq I/O*: libzmq's background threads; *bench (monitor)*: this script sampling heartbeats and the "
        "journal; *others*: machine busy minus all of these (other processes, kernel threads)."
    )
    add("")
    shown = [s for s in (run.latency[-1] if run.latency else None, best) if s is not None]
    if shown:
        add("CPU per acknowledged command, µs:")
        add("")
        add("| at | " + " | ".join(CPU_ROLES) + " | total |")
        add("| --- | " + " | ".join("---:" for _ in CPU_ROLES) + " | ---: |")
        for s in shown:
            us = per_command_us(s)
            add(
                f"| {s.label} | "
                + " | ".join(f"{us.get(role, 0):.1f}" for role in CPU_ROLES)
                + f" | {sum(us.values()):.1f} |"
            )
        add("")
    add("## 4. What limits the pipeline")
    add("")
    add(bottleneck_text(run))
    add("")
    add("## 5. Performance problems seen in this run")
    add("")
    add(findings_text(run))
    add("")
    add("## Method and caveats")
    add("")
    add(
        "- Load: each load process builds its frames before a step (not timed), then sends each at its scheduled "
        "time on a DEALER without waiting for answers and reads the acknowledgements in the same loop, sleeping "
        "in `select()` on the ZeroMQ descriptors (timer slack 1 µs) so that an ack is timed when it arrives. Order "
        f"flow on BTCUSDT around a 100,000.00 USDT mid: ~45% passive limit orders 1-50 ticks from the mid, ~45% "
        f"cancels (by client order id) of the process's own resting orders, of which it keeps ~"
        f"{RESTING_PER_WORKER:,}, and 10% LIMIT IOC orders 1-4 ticks through the mid that trade; "
        f"{ACCOUNTS_PER_WORKER:,} accounts per process; quantities from 0.0001 BTC, median ~0.002 BTC. "
        f"Realised over the measured steps: {realised_mix(run)}."
    )
    add(
        f"- In the throughput steps a load process sends what is due at most every {args.send_quantum_us:g} µs "
        "(so a few to a few dozen commands at a time, as a gateway serving many clients would); latency is still "
        "counted from each command's own scheduled time. Without this the load process wakes once per command "
        "and costs several times more CPU, which it takes from the sequencer and the engine on this 2-core machine."
    )
    add(
        "- The load processes, the sequencer, the engine (two Python threads), Redis and this script share the "
        f"machine's {ncpu} cores; the load is part of every CPU figure above, as it would not be with the gateways "
        "on other machines."
    )
    add(
        "- Engine progress is its heartbeat `in_seq`, sent by the event writer after the events of those commands "
        "are in the events stream and published: the engine's figures include the writer."
    )
    add(
        "- The venue runs with its defaults (MERCURY_BUSY_LAG=100000, MERCURY_MAX_BATCH=4096, a snapshot every "
        "200,000 commands); nothing was tuned for the benchmark. CPU times are each thread's utime + stime from "
        "/proc; machine busy is 100% minus the kernel's idle time (/proc/uptime), which stays exact on this "
        "tickless guest where the busy counters of /proc/stat do not."
    )
    add("")
    return "\n".join(out)


def realised_mix(run: Run) -> str:
    kinds: Counter[str] = Counter()
    for step in [*run.latency, *run.ramp]:
        for res in step.results:
            kinds.update(res.kinds)
    total = sum(kinds.values()) or 1
    names = {"limit": "passive limit", "cancel": "cancel", "limit_ioc": "LIMIT IOC"}
    return ", ".join(f"{100 * v / total:.1f}% {names.get(k, k)}" for k, v in kinds.most_common()) + (
        f" of {total:,} commands"
    )


def _rewrite_steps(run: Run) -> str:
    hit = [s for s in run.ramp if s.forks]
    if not hit:
        return "No throughput step had one."
    ok = [s for s in hit if s.sustained]
    return (
        "Throughput steps during which a rewrite ran: "
        + ", ".join(
            f"{s.offered:,.0f}/s ({'sustained' if s.sustained else 'not sustained'}, Redis "
            f"{s.cpu.get('redis', 0):.0f}% of a core, its fork blocked Redis {s.fork_ms:.0f} ms)"
            for s in hit
        )
        + f"; {len(ok)} of {len(hit)} sustained. While Redis forks, no XADD is answered, so acknowledgements and "
        "events stall for that long; afterwards the rewrite's CPU and disk work is taken from the pipeline on "
        "2 cores."
    )


def bottleneck_text(run: Run) -> str:
    """Which stage fell behind first above the highest sustained rate, and what the CPU was doing meanwhile."""
    best = highest_sustained(run.ramp)
    above = [s for s in run.ramp if not s.sustained and (best is None or s.offered > best.offered)]
    ncpu = os.cpu_count() or 1
    out: list[str] = []
    if not above:
        return "No step above the highest sustained rate failed: the limit lies above the rates tried."
    fail = above[0]
    stages = []
    if fail.sent_rate < 0.97 * fail.offered:
        stages.append(f"the load processes sent only {fail.sent_rate:,.0f}/s")
    if fail.answered_rate < 0.97 * fail.sent_rate:
        stages.append(
            f"the sequencer acknowledged {fail.answered_rate:,.0f}/s of {fail.sent_rate:,.0f}/s sent "
            f"({fail.in_flight_end:,} unacknowledged at the end)"
        )
    if fail.engine_rate < 0.97 * fail.answered_rate or fail.engine_lag_end > max(500, 0.05 * fail.offered):
        stages.append(
            f"the engine applied {fail.engine_rate:,.0f}/s and ended {fail.engine_lag_end:,} journaled commands behind"
        )
    limit = max(500.0, 0.05 * fail.offered)
    if fail.in_flight_end > limit and fail.answered_rate >= 0.97 * fail.sent_rate:
        stages.append(f"{fail.in_flight_end:,} commands were still unacknowledged at the end")
    if fail.backlogged > BACKLOGGED:
        stages.append(
            f"a backlog over 50 ms of load stood during {100 * fail.backlogged:.0f}% of the window (ack p50 "
            f"{_ms(fail.ack_pct.get('p50', 0))} ms)"
        )
    if fail.forks:
        stages.append(f"Redis forked for an AOF rewrite during the step (blocked {fail.fork_ms:.0f} ms)")
    busy = fail.statuses.get("BUSY", 0)
    cpu = fail.cpu
    seq = cpu.get("sequencer", 0)
    eng = cpu.get("engine matching", 0) + cpu.get("engine writer", 0)
    out.append(
        f"The first rate above {best.offered:,.0f}/s that failed, {fail.offered:,.0f}/s: "
        if best is not None
        else f"At {fail.offered:,.0f}/s: "
    )
    out[-1] += (
        ("; ".join(stages) if stages else "a backlog was left at the end of the window")
        + (f"; {busy:,} new orders were refused BUSY" if busy else "")
        + "."
    )
    out.append("")
    saturated = []
    if seq >= 90:
        saturated.append(f"the sequencer's thread ({seq:.0f}% of a core)")
    if eng >= 90:
        saturated.append(f"the engine's GIL (matching + writer {eng:.0f}% of a core)")
    if saturated:
        out.append("Saturated at that rate: " + " and ".join(saturated) + ".")
    else:
        out.append(
            f"No single stage was saturated there: the sequencer's thread used {seq:.0f}% of a core, the engine's "
            f"two threads together {eng:.0f}% (they share one GIL, so 100% would be its ceiling), Redis "
            f"{cpu.get('redis', 0):.0f}%, the load {cpu.get('load', 0) + cpu.get('load zmq I/O', 0):.0f}%, "
            f"libzmq's I/O threads {sum(v for k, v in cpu.items() if 'zmq' in k and 'load' not in k):.0f}%, "
            f"others {fail.others:.0f}%; the machine was {fail.machine_busy:.0f}% busy. "
            f"{sum(1 for v in cpu.values() if v >= 5)} threads busier than 5% of a core share {ncpu} cores: what "
            "runs out is the machine, and each stage falls behind by waiting for a core, not by using one up."
        )
    if best is not None:
        us = per_command_us(best)
        total = sum(us.values())
        bound = ncpu * 1e6 / total if total else 0.0
        venue = total - _group_us(us, "load") - us.get("bench (monitor)", 0)
        out.append("")
        out.append(
            f"The arithmetic agrees: at {best.offered:,.0f}/s one command costs {total:.0f} µs of CPU in all, so "
            f"{ncpu} cores carry at most ~{bound:,.0f} commands/s of this pipeline together with its load "
            f"generator. Without the load generator and this script ({venue:.0f} µs per command) the venue alone "
            f"would fit ~{ncpu * 1e6 / venue:,.0f} commands/s on {ncpu} cores — before any contention."
        )
        core = engine_core_figure()
        if core is not None:
            ns = 1e9 / core[0]
            out.append("")
            out.append(
                f"The engine core is not the limit: bench/reports/engine-core.md measures {core[1]} "
                f"({ns / 1000:.1f} µs per command on one core, no I/O). In this pipeline the engine's matching "
                f"thread spent {us.get('engine matching', 0):.1f} µs per command (decode + apply + handing the "
                f"events to the writer) and its event writer {us.get('engine writer', 0):.1f} µs."
            )
    batch = [lim for lim in run.redis if "256-command batch" in lim.name]
    if batch:
        out.append("")
        out.append(
            f"Redis is not the limit: one XADD of a 256-command batch took {batch[0].us_per_round_trip:.0f} µs "
            f"({batch[0].commands_per_s:,.0f} commands/s), and Redis used {cpu.get('redis', 0):.0f}% of a core "
            f"in the failing step."
        )
    return "\n".join(out)


def findings_text(run: Run) -> str:
    """Costs in the sequencer and engine code that this run shows, with its own numbers."""
    best = highest_sustained(run.ramp)
    lat = run.latency[-1] if run.latency else None
    out: list[str] = []
    recv_mp = _plumbing(run, "`recv_multipart")
    send_mp = _plumbing(run, "`send_multipart")
    send_plain = _plumbing(run, "the same ack")
    recv_plain = _plumbing(run, "the same command")
    rcvmore = _plumbing(run, "one `getsockopt(RCVMORE)`")
    seq_src = _source("sequencer/service.py")
    writer_src = _source("engine/service.py")
    if best is not None:
        us = per_command_us(best)
        writer, matching = us.get("engine writer", 0), us.get("engine matching", 0)
        sends = (
            "with `send_multipart`"
            if "send_multipart([topic" in writer_src
            else "frame by frame with `send` (already the cheaper form)"
        )
        out.append(
            f"1. **The engine's event writer costs {_compare(writer, matching)} the matching.** At "
            f"{best.offered:,.0f}/s the writer "
            f"thread used {best.cpu.get('engine writer', 0):.0f}% of a core ({writer:.1f} µs per command) against "
            f"{best.cpu.get('engine matching', 0):.0f}% ({matching:.1f} µs) for the matching thread"
            + (
                f"; at {lat.offered:,.0f}/s {lat.cpu.get('engine writer', 0):.0f}% against "
                f"{lat.cpu.get('engine matching', 0):.0f}%"
                if lat is not None
                else ""
            )
            + ". Both share the engine's GIL, so the writer's time is taken from the matching. Per loop it makes "
            "one Redis round trip (pipelined XADDs) and sends a heartbeat; per batch it encodes and publishes the "
            "batch on `x/`, then groups the events by account and symbol and encodes and sends each group "
            f"{sends}: with thousands of accounts that is one more encode and message per command, whether or not "
            "anyone subscribed to that account. Lighter: fan out per account only for topics someone subscribed "
            "to (an XPUB socket tells), or in a separate process that reads `x/`; one heartbeat every few "
            "milliseconds rather than one per loop."
        )
        seq_us = _group_us(us, "sequencer")
        if "router.recv_multipart(" in seq_src or "self.router.send_multipart" in seq_src:  # per command
            saving = max(0.0, recv_mp + send_mp - recv_plain - send_plain)
            out.append(
                f"2. **The sequencer spends a large share of each command in pyzmq's Python layer.** At "
                f"{best.offered:,.0f}/s it used {seq_us:.1f} µs of CPU per command (main thread + libzmq I/O); "
                f"`recv_multipart` of a command costs {recv_mp:.2f} µs and `send_multipart` of its ack "
                f"{send_mp:.2f} µs (section 1), against {recv_plain:.2f} µs for `recv` + `recv` + one "
                f"`get(RCVMORE)` and {send_plain:.2f} µs for two plain `send` calls: ~{saving:.1f} µs less per "
                "command with the same frame-count check."
            )
        else:
            checks = seq_src.count("more(zmq.RCVMORE)")
            extra = (
                f" It still asks `getsockopt(RCVMORE)` {checks} times per command ({rcvmore:.2f} µs each here); a "
                "ROUTER always delivers the identity and at least one frame, so the check before the body can go."
                if checks > 1
                else ""
            )
            out.append(
                f"2. **The sequencer's per-command pyzmq calls.** It receives and acknowledges frame by frame "
                f"(section 1: {recv_plain:.2f} + {send_plain:.2f} µs a command, against {recv_mp:.2f} + "
                f"{send_mp:.2f} µs with `recv_multipart` / `send_multipart`); at {best.offered:,.0f}/s it used "
                f"{seq_us:.1f} µs of CPU per command in all (main thread + libzmq I/O).{extra}"
            )
    if lat is not None and best is not None:
        lus, bus = per_command_us(lat), per_command_us(best)
        single = [lim for lim in run.redis if lim.name.startswith("XADD of one command")]
        rt = f" (one XADD round trip took {single[0].us_per_round_trip:.0f} µs in section 1)" if single else ""
        ack = next((r for r in run.latency_rows if r.rate == lat.offered and r.what == "ack"), None)
        out.append(
            f"3. **Commands that arrive alone are expensive, and that is what costs the latency target.** At "
            f"{lat.offered:,.0f}/s (latency run) one command took {sum(lus.values()):.0f} µs of CPU in all "
            f"(sequencer {_group_us(lus, 'sequencer'):.0f}, engine {_group_us(lus, 'engine'):.0f}, load "
            f"{_group_us(lus, 'load'):.0f}) against {sum(bus.values()):.0f} µs at {best.offered:,.0f}/s: at that "
            "rate most commands reach the sequencer alone, so each pays its own Redis round trip in the sequencer"
            f"{rt}, another in the engine's writer, a heartbeat, and the wake-ups of the ZeroMQ I/O threads on "
            f"both sides. The machine was {lat.machine_busy:.0f}% busy at {lat.offered:,.0f}/s"
            + (f" and the ack p99 was {_ms(ack.pct_ms['p99'])} ms" if ack is not None else "")
            + ": the tail is time spent waiting for a core. Batching only sets in once commands queue up. Making "
            "the per-command path cheaper (item 2) and the writer's per-batch work lighter (item 1) is what would "
            "bring it down; moving the load generator off the machine would too (it used "
            f"{lat.cpu.get('load', 0) + lat.cpu.get('load zmq I/O', 0):.0f}% of a core in that run)."
        )
    forks = run.redis_info.get("total_forks", "0")
    if forks.isdigit() and int(forks) > 0:
        aof_mib = int(run.redis_info.get("aof_current_size", "0") or 0) / 2**20
        out.append(
            f"{len(out) + 1}. **Redis rewrote its AOF {forks} times in this {run.seconds:.0f} s run** (a fork that "
            f"writes the whole dataset each time; {run.redis_info.get('used_memory_human', '?')} in memory and a "
            f"{aof_mib:,.0f} MiB AOF at the end). Neither the journal nor the events stream is ever trimmed, so "
            "every rewrite is bigger than the last; the *redis* CPU column includes the rewriting child process, "
            "which is why it jumps between steps. "
            + _rewrite_steps(run)
            + " A venue that runs for days will spend ever more CPU and disk on rewrites unless the streams are "
            "trimmed behind a snapshot (journal) and behind the persisters (events)."
        )
    if not out:
        return "Nothing to report: no sustained step and no latency run."
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------------
# plots


def plot(run: Run, out: Path) -> None:
    steps = run.ramp
    x = [s.offered / 1000 for s in steps]
    fig = Figure(figsize=(14, 5.5))
    ax, bx = fig.subplots(1, 2)
    top = max([*x, 60.0]) * 1.05
    ax.plot([0, top], [0, top], "k:", lw=1, label="achieved = offered")
    ax.plot(x, [s.sent_rate / 1000 for s in steps], "o-", label="sent by the load")
    ax.plot(x, [s.answered_rate / 1000 for s in steps], "s-", label="acknowledged (journaled)")
    ax.plot(x, [s.engine_rate / 1000 for s in steps], "^-", label="applied by the engine (heartbeat)")
    bad = [s for s in steps if not s.sustained]
    if bad:
        ax.scatter([s.offered / 1000 for s in bad], [s.engine_rate / 1000 for s in bad], s=140, facecolors="none",
                   edgecolors="red", label="not sustained")  # fmt: skip
    ax.axvline(50, color="grey", lw=0.8, ls="--")
    best = highest_sustained(steps)
    if best is not None:
        ax.axvline(best.offered / 1000, color="green", lw=0.8, ls=":")
        ax.text(best.offered / 1000 + 0.5, top * 0.10, f"highest sustained {_k(best.offered)}/s", color="green")
    ax.text(50.5, top * 0.03, "target 50k/s", color="grey")
    ax.set_xlabel("offered load, thousand commands/s")
    ax.set_ylabel("achieved, thousand commands/s")
    ax.set_title("Pipeline throughput (open loop)")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    bottom = np.zeros(len(steps))
    pos = np.arange(len(steps))
    for role in CPU_ROLES:
        vals = np.array([s.cpu.get(role, 0.0) for s in steps])
        bx.bar(pos, vals, bottom=bottom, label=role)
        bottom += vals
    bx.bar(pos, [s.others for s in steps], bottom=bottom, label="others", color="lightgrey", hatch="//")
    ncpu = os.cpu_count() or 1
    bx.axhline(100 * ncpu, color="k", lw=1, ls="--")
    bx.text(-0.4, 100 * ncpu + 3, f"{ncpu} cores = {100 * ncpu}%")
    bx.set_ylim(0, 100 * ncpu * 1.12)
    bx.set_xticks(pos, [_k(s.offered) for s in steps])
    bx.set_xlabel("offered load, commands/s")
    bx.set_ylabel("CPU, % of one core")
    bx.set_title("Where the CPU goes, per step")
    bx.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(out / "pipeline.png", dpi=110)

    fig = Figure(figsize=(13, 5))
    ax, bx = fig.subplots(1, 2)
    nines = np.linspace(0.0, 4.0, 81)
    pcts = 100 * (1 - 10 ** (-nines))
    for step in run.latency:
        for attr, what, style in (("ack_ns", "ack", "-"), ("event_ns", "first event", "--")):
            values = np.array(latencies_ms(step.results, attr, SETTLE_S))
            if len(values):
                ax.plot(nines, np.percentile(values, pcts), style, label=f"{_k(step.offered)}/s, to {what}")
    ax.set_xticks([0, 1, 2, 3, 4], ["0%", "90%", "99%", "99.9%", "99.99%"])
    ax.set_yscale("log")
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency from scheduled send, ms")
    ax.set_title("Latency distribution, constant-rate open loop")
    ax.axhline(2, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    for key, style in (("p50", "o-"), ("p99", "s-"), ("max", "^:")):
        bx.plot(x, [max(1e-3, s.ack_pct.get(key, 0.0)) for s in steps], style, label=f"ack {key}")
    bx.set_yscale("log")
    bx.set_xlabel("offered load, thousand commands/s")
    bx.set_ylabel("ms")
    bx.set_title("Acknowledgement latency per throughput step")
    bx.legend(fontsize=8)
    bx.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(out / "pipeline-latency.png", dpi=110)


# ---------------------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.split("\n\n")[0])
    rates = "10000,20000,30000,40000,50000,60000,70000,80000,90000,100000"
    p.add_argument("--rates", default=rates, help="offered rates of the throughput steps (commands/s)")
    p.add_argument("--step-seconds", type=float, default=5.0, help="length of each throughput step")
    p.add_argument(
        "--send-quantum-us",
        type=float,
        default=300.0,
        help="throughput steps: a load process sends what is due at most this often (latency runs: every command)",
    )
    p.add_argument("--latency-rates", default="1000,10000", help="rates of the latency runs")
    p.add_argument("--latency-seconds", type=float, default=10.0, help="measured length of each latency run")
    p.add_argument("--workers", type=int, default=1, help="load processes for the throughput steps")
    p.add_argument("--refine", type=int, default=2, help="bisection steps above the highest sustained rate")
    p.add_argument("--redis-seconds", type=float, default=1.5, help="length of each Redis measurement")
    p.add_argument("--out", type=Path, default=REPORTS, help="where pipeline.md and the plots go")
    args = p.parse_args(argv)
    args.rates = [float(v) for v in args.rates.split(",") if v]
    args.latency_rates = [float(v) for v in args.latency_rates.split(",") if v]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    run = execute(args)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(run, args.out)
    (args.out / "pipeline.md").write_text(render(run))
    _say(f"wrote {args.out / 'pipeline.md'} ({run.seconds:.0f} s)")


if __name__ == "__main__":
    main()
