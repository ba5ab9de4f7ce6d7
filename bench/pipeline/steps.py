"""Open-loop steps (throughput and latency): running one, waiting for a quiet machine, judging it, HDR latency rows."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from hdrh.histogram import HdrHistogram

from bench.pipeline.constants import BACKLOGGED, SETTLE_S, TICK_S
from bench.pipeline.cpu import CpuMeter, background_busy
from bench.pipeline.load import LoadProcess, Plan, WorkerResult
from bench.pipeline.monitor import Monitor


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


def highest_sustained(steps: Sequence[StepResult]) -> StepResult | None:
    """The highest rate sustained with every lower rate tried sustained too (a rate that passes above one that
    failed is luck on a drifting machine, not a capacity)."""
    best = None
    for s in sorted(steps, key=lambda s: s.offered):
        if not s.sustained:
            break
        best = s
    return best


def _say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)
