"""A load session on a venue (private or already running): the traders, the observers, the load process, and the
steps run at given rates with the venue's progress and CPU sampled meanwhile."""

from __future__ import annotations

import os
import secrets
import sys
import threading
import time
from array import array
from dataclasses import dataclass, field

import numpy as np
import redis

from bench.venue.accounts import Trader, accounts_for
from bench.venue.cpu import ProcessCpu, Watched
from bench.venue.loadgen import LoadProcess, Plan, Result
from bench.venue.observe import TapData, TapProcess, Watchers
from bench.venue.tally import Requests, failures
from sequencer.journal import Journal
from wire import keys
from wire.config import Settings
from wire.venue import SymbolSpec

SAMPLE_S = 0.1  # progress samples


@dataclass(frozen=True, slots=True)
class Target:
    """Where the load goes and where it is observed."""

    url: str  # the front door
    settings: Settings  # the venue's sockets, Redis and PostgreSQL
    pg_url: str
    shard: str
    spec: SymbolSpec
    mid: int  # ticks the flow trades around
    streams: dict[str, str]  # WebSocket clients on the trade stream: name -> ws://host:port


@dataclass
class Step:
    label: str
    rate: float
    seconds: float
    result: Result
    t0: int  # ns: the window [t0, t1] the requests were due in
    t1: int
    cpu: dict[str, float]  # % of one core per process over the window
    machine_busy: float  # % of all cores busy over the window
    drain_s: float  # after the window: until every answer arrived and the engine and persisters caught up
    drained: bool
    pg_lag_end: int  # events the PostgreSQL persister had not committed at the window's end
    engine_lag_end: int  # commands journaled and not yet applied at the window's end
    sustained: bool = False
    why: str = ""


@dataclass
class Progress:
    """The venue's progress every SAMPLE_S: journaled in_seq (the sequencer), the engine's heartbeat in_seq and
    out_seq, the persisters' offsets."""

    at: array[int] = field(default_factory=lambda: array("q"))
    journaled: array[int] = field(default_factory=lambda: array("q"))
    engine: array[int] = field(default_factory=lambda: array("q"))
    engine_out: array[int] = field(default_factory=lambda: array("q"))
    pg: array[int] = field(default_factory=lambda: array("q"))
    mongo: array[int] = field(default_factory=lambda: array("q"))


def _idle_seconds() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[1])


class Session:
    def __init__(self, target: Target, traders: list[Trader], processes: dict[str, Watched] | None = None,
                 orders_per_10s: int = 100, spread: int = 0) -> None:  # fmt: skip
        self.target = target
        self.traders = traders
        self.orders_per_10s = orders_per_10s
        self.spread = spread  # accounts every step uses (0: as many as its rate needs)
        self.run_tag = "b" + secrets.token_hex(3)
        self.next_index = 0
        r = redis.Redis.from_url(target.settings.redis_url, socket_timeout=5)
        try:
            base = Journal(r, keys.journal(target.shard)).last_in_seq() + 1
        finally:
            r.close()
        accounts = range(min(t.account for t in traders), max(t.account for t in traders) + 1)
        self.tap = TapProcess(target.settings, base, target.spec.symbol, accounts)
        self.watchers = Watchers(target.streams, target.spec.symbol, target.settings.redis_url, target.shard,
                                 target.pg_url)  # fmt: skip
        self.watchers.start()
        self.watchers.ready.wait(10)
        self.loader = LoadProcess()
        watched = dict(processes or {})
        watched["bench load"] = Watched(self.loader.pid, False)
        watched["bench tap"] = Watched(self.tap.pid, False)
        watched["bench observers"] = Watched(os.getpid(), False)
        self.cpu = ProcessCpu(watched)
        self.progress = Progress()
        self.steps: list[Step] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="bench-progress", daemon=True)
        self._sampler.start()
        time.sleep(0.5)  # subscriptions reach the PUB sockets, WebSocket clients connect

    def _sample(self) -> None:
        p, tap, w = self.progress, self.tap, self.watchers
        while not self._stop.wait(SAMPLE_S):
            p.at.append(time.time_ns())
            p.journaled.append(tap.journal_in_seq)
            p.engine.append(tap.engine_in_seq)
            p.engine_out.append(tap.engine_out_seq)
            p.pg.append(w.pg.last())
            p.mongo.append(w.mongo.last())

    def plan(self, rate: float, seconds: float, bad_every: int = 0) -> Plan:
        t = self.target
        # only the accounts this rate needs: each gateway caches an API key for 5 s (gateways/binance/auth.py), and
        # with more keys in use than requests in 5 s every request would look its key up in PostgreSQL again
        traders = self.traders[: self.spread or accounts_for(rate, self.orders_per_10s)]
        return Plan(url=t.url, traders=traders, rate=rate, seconds=seconds, symbol=t.spec.symbol, mid=t.mid,
                    tick=str(t.spec.tick_size), lot=str(t.spec.lot_size), run_tag=self.run_tag,
                    start_ns=time.time_ns() + 300_000_000, bad_every=bad_every,
                    first_index=self.next_index)  # fmt: skip

    def caught_up(self) -> bool:
        tap = self.tap
        return (tap.engine_in_seq >= tap.journal_in_seq and self.watchers.pg.last() >= tap.engine_out_seq
                and self.watchers.mongo.last() >= tap.engine_out_seq)  # fmt: skip

    def step(self, label: str, rate: float, seconds: float, bad_every: int = 0, drain_s: float = 30.0) -> Step:
        plan = self.plan(rate, seconds, bad_every)
        self.next_index += max(1, int(rate * seconds))
        self.loader.run(plan)
        t1 = plan.start_ns + int(seconds * 1e9)
        _sleep_until(plan.start_ns)
        cpu0, idle0 = self.cpu.sample(), _idle_seconds()
        _sleep_until(t1)
        cpu1, idle1 = self.cpu.sample(), _idle_seconds()
        engine_lag = max(0, self.tap.journal_in_seq - self.tap.engine_in_seq)
        pg_lag = max(0, self.tap.engine_out_seq - self.watchers.pg.last())
        result = self.loader.result(timeout=seconds + 120)
        deadline = time.monotonic() + drain_s
        while not self.caught_up() and time.monotonic() < deadline:
            time.sleep(0.02)
        drained = self.caught_up()
        busy = 100.0 * (1 - (idle1 - idle0) / ((cpu1[0] - cpu0[0]) * (os.cpu_count() or 1)))
        step = Step(label, rate, seconds, result, plan.start_ns, t1, ProcessCpu.percent(cpu0, cpu1),
                    max(0.0, min(100.0, busy)), (time.time_ns() - t1) / 1e9, drained, pg_lag, engine_lag)  # fmt: skip
        judge(step)
        self.steps.append(step)
        return step

    def requests(self, steps: list[Step] | None = None) -> Requests:
        return Requests.of([s.result for s in (self.steps if steps is None else steps)])

    def seen(self) -> TapData:
        """What the tap saw (it stops listening then)."""
        return self.tap.close()

    def close(self) -> None:
        """Stops the load and the observers; never raises, so that the caller goes on to stop the venue (a close
        that failed once left a whole venue running)."""
        self._stop.set()
        self._sampler.join(2)
        for part in (self.loader.stop, self.watchers.close, self.tap.close):
            try:
                part()
            except Exception as exc:
                print(f"bench: closing the session: {type(exc).__name__}: {exc}", file=sys.stderr)


def _sleep_until(ns: int) -> None:
    wait = (ns - time.time_ns()) / 1e9
    if wait > 0:
        time.sleep(wait)


SETTLE_S = 1.0  # latency is counted from this far into a step: its first second opens connections, warms key caches


def due_p99(req: Requests, t0: int) -> float:
    """p99 from due to answer (ms) of the requests due SETTLE_S or more after ``t0``, answered or not."""
    rows = (req.sched >= t0 + int(SETTLE_S * 1e9)) & (req.sent > 0)
    if not rows.any():
        return float("nan")
    ms = (req.resp[rows] - req.sched[rows]) / 1e6
    ms[req.resp[rows] == 0] = np.inf  # never answered
    return float(np.percentile(ms, 99))


OK_SHARE = 0.97  # answered 200 of what was offered
MAX_P99_MS = 500.0  # due -> answered: a standing queue shows here first
MAX_DRAIN_S = 10.0


def judge(step: Step) -> None:
    """Sustained: no failure, almost nothing refused, nearly all offered requests answered 200, p99 from due to
    answer under MAX_P99_MS, and the engine and both persisters caught up within MAX_DRAIN_S of the window."""
    req = Requests.of([step.result])
    n = len(req.kind)
    counts = req.counts()
    bad = failures(counts)
    ok = int(req.ok().sum())
    refused = n - ok - sum(bad.values())
    p99 = due_p99(req, step.t0)
    reasons = []
    if bad:
        reasons.append("failures: " + ", ".join(f"{k} {c} x{v}" for (k, c), v in bad.items()))
    if refused > 0.001 * n:
        reasons.append(f"{refused} refused or not sent")
    if ok < OK_SHARE * n:
        reasons.append(f"{ok / max(n, 1):.0%} answered 200")
    if p99 > MAX_P99_MS:
        reasons.append(f"p99 due -> answer {p99:,.0f} ms")
    if not step.drained or step.drain_s > MAX_DRAIN_S:
        reasons.append(f"engine/persisters not caught up {step.drain_s:.0f} s after the window")
    step.sustained = not reasons
    step.why = "; ".join(reasons)
