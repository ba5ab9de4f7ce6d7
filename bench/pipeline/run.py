"""One run of the benchmark: the venue, the Redis and plumbing measurements, the latency runs, the throughput ramp."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.pipeline.constants import SETTLE_S
from bench.pipeline.cpu import CpuMeter, background_busy
from bench.pipeline.limits import PlumbingCost, RedisLimit, plumbing_costs, redis_limits
from bench.pipeline.load import LoadProcess
from bench.pipeline.monitor import Monitor
from bench.pipeline.order_flow import OrderFlow, funded_accounts
from bench.pipeline.steps import (
    LatencyRow,
    StepResult,
    _say,
    hdr_row,
    highest_sustained,
    quiet_step,
    run_step,
    wait_quiet,
)
from client.sequencer import new_source
from tests.harness import Venue


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


def execute(args: argparse.Namespace) -> Run:
    run = Run(args=args, started=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), workers=args.workers)
    t0 = time.monotonic()
    run.background_busy = background_busy()
    with tempfile.TemporaryDirectory(prefix="mercury-bench-") as tmp:
        venue = Venue(Path(tmp))
        venue.start()
        # the engine refuses orders it cannot lock for: fund every account the load processes trade from
        _say("funding accounts")
        venue.wait_engine(venue.fund(*funded_accounts(args.workers)), timeout=120)
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
