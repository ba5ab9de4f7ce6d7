"""The open-loop load process: signed requests at a fixed rate through the front door, each one's times recorded.

Request ``i`` is due at ``start + i / rate`` whatever happened to the earlier ones (open loop: a slow venue does
not slow the offered load, so its latency is not hidden). A due request goes out at once on an idle connection, or
waits in this process's queue for one (more connections are opened as needed, up to ``connections``); its
scheduled time, the time it was written and the time its answer arrived are all kept (CLOCK_REALTIME ns, so they
compare with the venue's own stamps and with the observers in other processes).

It runs in its own process (multiprocessing, spawn) so that its event loop is not disturbed by the observers, and
hands back flat arrays.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import time
from array import array
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from multiprocessing.connection import Connection as Pipe
from urllib.parse import urlsplit

import uvloop

from bench.venue.accounts import Trader
from bench.venue.flow import NEW, OrderFlow
from bench.venue.http import Connection, error_code, order_id

NOT_SENT = "not sent: the venue answered too slowly"  # queued in the load process past its cap or the drain
NO_ANSWER = "no answer before the drain timeout"
CONNECTION = "connection error"
QUEUE_GRACE_S = 2.0  # after the last due time, requests still queued in this process may wait this long to go out


@dataclass(frozen=True, slots=True)
class Plan:
    url: str  # the front door, http://host:port
    traders: list[Trader]
    rate: float  # requests/s
    seconds: float
    symbol: str
    mid: int  # ticks
    tick: str  # the symbol's tick and lot sizes, as decimal strings
    lot: str
    run_tag: str  # prefix of every newClientOrderId of this run
    start_ns: int  # CLOCK_REALTIME ns of request 0's due time
    connections: int = 512
    max_backlog: int = 20_000  # requests waiting for a connection before new ones are dropped (counted NOT_SENT)
    drain_s: float = 30.0  # how long to wait for the last answers
    bad_every: int = 0  # tests: every Nth request is an order the venue must refuse (an error the load must report)
    seed: int = 1
    first_index: int = 0  # request indexes continue across the steps of one run (unique client order ids)


@dataclass(slots=True)
class Result:
    first_index: int
    rate: float
    start_ns: int
    classes: list[str]  # status class names; ``status`` holds indexes into this list
    kind: bytes  # array('b'): NEW, CANCEL or BAD per request
    who: bytes  # array('l'): trader index
    sched_ns: bytes  # array('q'): when it was due
    sent_ns: bytes  # array('q'): when it was written (0: never)
    resp_ns: bytes  # array('q'): when its answer arrived (0: none)
    status: bytes  # array('h')
    order_id: bytes  # array('q'): a new order's orderId from its ACK, a cancel's target; 0 otherwise
    deep: bytes  # array('b'): a new order resting DEEP or more from the mid
    max_lag_ms: float  # worst delay between a request's due time and its write


class LoadGen:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        parts = urlsplit(plan.url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.flow = OrderFlow(plan.traders, f"{self.host}:{self.port}", plan.symbol, plan.mid, Decimal(plan.tick),
                              Decimal(plan.lot), plan.run_tag, plan.seed + plan.first_index)  # fmt: skip
        n = self.n = max(1, int(plan.rate * plan.seconds))
        self.kind = array("b", bytes(n))
        self.who = array("l", bytes(array("l").itemsize * n))
        self.sched = array("q", bytes(8 * n))
        self.sent = array("q", bytes(8 * n))
        self.resp = array("q", bytes(8 * n))
        self.status = array("h", bytes(2 * n))
        self.order_id = array("q", bytes(8 * n))
        self.deep = array("b", bytes(n))
        self.classes: list[str] = ["200"]
        self._class_ids: dict[str, int] = {"200": 0}
        self.idle: deque[Connection] = deque()
        self.waiting: deque[int] = deque()
        self.open = 0  # connections open or opening
        self.answered = 0
        self.max_lag = 0
        self.done = asyncio.Event()
        self._opening: set[asyncio.Future[None]] = set()

    def class_of(self, name: str) -> int:
        k = self._class_ids.get(name)
        if k is None:
            k = self._class_ids[name] = len(self.classes)
            self.classes.append(name)
        return k

    # --- connections -------------------------------------------------------------------------------------------

    def _connect(self) -> None:
        self.open += 1
        task = asyncio.ensure_future(self._open())
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: Connection(self._answer, self._idle, self._lost),
                                                   self.host, self.port)  # fmt: skip
        except OSError:
            self.open -= 1
            if self.waiting:  # nothing to send on: the waiting request fails, as a client's would
                i = self.waiting.popleft()
                self.sent[i] = time.time_ns()
                self._answer(i, 0, b"", time.time_ns())
            return
        self._idle(conn)

    def _idle(self, conn: Connection) -> None:
        if self.waiting:
            self._send(conn, self.waiting.popleft())
        else:
            self.idle.append(conn)

    def _lost(self, conn: Connection) -> None:
        self.open -= 1
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)
        if self.waiting and self.open < self.plan.connections:
            self._connect()

    # --- requests ----------------------------------------------------------------------------------------------

    def _due(self, i: int) -> None:
        if self.idle:
            self._send(self.idle.popleft(), i)
            return
        if len(self.waiting) >= self.plan.max_backlog:
            self.status[i] = self.class_of(NOT_SENT)
            self.answered += 1
            return
        self.waiting.append(i)
        if self.open < self.plan.connections:
            self._connect()

    def _send(self, conn: Connection, i: int) -> None:
        now = time.time_ns()
        bad = self.plan.bad_every > 0 and i % self.plan.bad_every == self.plan.bad_every - 1
        kind, who, target, deep, request = self.flow.next(self.plan.first_index + i, now // 1_000_000, bad)
        self.kind[i] = kind
        self.who[i] = who
        self.order_id[i] = target
        self.deep[i] = deep
        lag = now - self.sched[i]
        self.max_lag = max(self.max_lag, lag)
        self.sent[i] = now
        conn.send(i, request)

    def _answer(self, i: int, status: int, body: bytes, now: int) -> None:
        self.resp[i] = now
        self.answered += 1
        if status == 200:
            if self.kind[i] == NEW:
                oid = order_id(body)
                if oid is not None:
                    self.order_id[i] = oid
                    if self.deep[i]:
                        self.flow.deep.append((self.who[i], oid))
        elif status == 0:
            self.status[i] = self.class_of(CONNECTION)
        else:
            code = error_code(body)
            self.status[i] = self.class_of(f"{status} {code}" if code is not None else f"{status}")
        if self.answered >= self.n:
            self.done.set()

    async def run(self) -> Result:
        plan = self.plan
        interval = 1e9 / plan.rate
        for i in range(self.n):
            self.sched[i] = plan.start_ns + int(i * interval)
        for _ in range(min(plan.connections, max(8, int(plan.rate * 0.02)))):
            self._connect()
        while time.time_ns() < plan.start_ns - 2_000_000:
            await asyncio.sleep(0.001)
        due_next = 0
        n, sched = self.n, self.sched
        while due_next < n:
            now = time.time_ns()
            while due_next < n and sched[due_next] <= now:
                self._due(due_next)
                due_next += 1
            if due_next < n:  # until the next one is due (the loop's timers have about 1 ms resolution)
                await asyncio.sleep(max(0.0005, (sched[due_next] - time.time_ns()) / 1e9))
        # the window is over: what still waits here for a connection after a short grace never reaches the venue
        grace = time.monotonic() + QUEUE_GRACE_S
        while self.waiting and time.monotonic() < grace:
            await asyncio.sleep(0.01)
        dropped = self.class_of(NOT_SENT)
        while self.waiting:
            self.status[self.waiting.popleft()] = dropped
            self.answered += 1
        if self.answered >= n:
            self.done.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done.wait(), plan.drain_s)
        no_answer, not_sent = self.class_of(NO_ANSWER), self.class_of(NOT_SENT)
        for i in range(n):
            if not self.resp[i] and self.status[i] == 0:
                self.status[i] = no_answer if self.sent[i] else not_sent  # still queued here: never reached the venue
        for conn in list(self.idle):
            if conn.transport is not None:
                conn.transport.close()
        return Result(plan.first_index, plan.rate, plan.start_ns, self.classes, self.kind.tobytes(),
                      self.who.tobytes(), self.sched.tobytes(), self.sent.tobytes(), self.resp.tobytes(),
                      self.status.tobytes(), self.order_id.tobytes(), self.deep.tobytes(),
                      self.max_lag / 1e6)  # fmt: skip


def _loop_run(plan: Plan) -> Result:
    return uvloop.run(LoadGen(plan).run())


def _main(pipe: Pipe) -> None:
    pipe.send(os.getpid())
    while True:
        plan = pipe.recv()
        if plan is None:
            return
        pipe.send(_loop_run(plan))


class LoadProcess:
    """The parent's handle: ``run(plan)`` starts a step and returns at once; ``result()`` waits for its arrays."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=_main, args=(child,), name="bench-load", daemon=True)
        self.proc.start()
        self.pid: int = self.pipe.recv()

    def run(self, plan: Plan) -> None:
        self.pipe.send(plan)

    def result(self, timeout: float | None = None) -> Result:
        if not self.pipe.poll(timeout):
            raise TimeoutError("the load process did not finish its step")
        result = self.pipe.recv()
        assert isinstance(result, Result)
        return result

    def stop(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.pipe.send(None)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
