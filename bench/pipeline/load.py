"""The open-loop load processes: one single-threaded sender/receiver per process and the main process's handle on it."""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import select
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection

import zmq

from bench.pipeline.constants import JOURNALED, TICK_S
from bench.pipeline.order_flow import OrderFlow
from client.sequencer import new_source
from wire.codec import decode_ack, decode_events
from wire.config import Settings


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
