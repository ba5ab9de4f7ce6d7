"""What the engine's metrics cost: the engine process's per-batch work with its metric updates on and off.

Run ``python -m bench.metrics_cost`` (about a minute; ``--quick`` for a smoke run). It writes
``bench/reports/metrics-cost.md``; every figure in it comes from that run.

Both passes do, per 256-command journal batch of the engine-core workload (bench/workload.py, 1 symbol, accounts and
risk on), the engine process's CPU work per batch: ``decode_batch``, ``Engine.apply_many``, ``encode`` of the
batch's events, and the writer's routing to its PUB topics (engine.topics, with the feeds' ``x/`` and ten accounts
subscribed) with the encoding of each topic's group; the routing pass also tallies trades by symbol, one dict
increment per trade, in both passes since it is the same code. The "on" pass adds exactly what the engine process
adds for metrics (engine/metrics.py): on the matching thread ``APPLIED.inc`` and ``ENGINE_IN_SEQ.set`` per batch, on
the writer thread ``count_write`` and ``ENGINE_OUT_SEQ.set`` per events-stream write. Here every batch is its own
write, the worst case: under load the writer gathers up to 512 batches into one write and counts them once. Both
threads share one interpreter lock in the engine process, so their sum on one core is the right comparison. The
passes alternate on fresh engines restored from the same snapshot, on one pinned core; each pass's state hash is
checked against the generator's.

A third pass adds tracing as the engine's writer does it (``engine.service.trace_write``, one command in
``--trace-every``, spans exported as JSON lines by the SDK's batch processor thread in this process).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.engine_core import pin
from bench.machine import engine_build, machine_markdown
from bench.workload import Workload, WorkloadConfig, build, fresh_engine
from engine.metrics import APPLIED, ENGINE_IN_SEQ, ENGINE_OUT_SEQ, count_write
from engine.service import trace_write
from engine.topics import ALL_TOPIC, TopicRouter
from wire.codec import decode_batch, encode
from wire.config import Settings
from wire.events import Event
from wire.tracing import Tracer

REPORT = Path(__file__).resolve().parent / "reports" / "metrics-cost.md"
COMMAND = "python -m bench.metrics_cost"


def _router() -> TopicRouter:
    """Subscriptions as in the local run: the feeds read ``x/`` (every batch), gateways a few users' accounts."""
    router = TopicRouter()
    for prefix in (ALL_TOPIC, *(b"a/%d/" % account for account in range(1, 11))):
        router.subscribe(prefix)
    return router


def _pass(workload: Workload, metrics: bool, tracer: Tracer | None = None) -> float:
    """One pass of the engine process's per-batch CPU work, with or without its metric updates and tracing."""
    engine, router = fresh_engine(workload), _router()
    apply_many, decode, enc, route = engine.apply_many, decode_batch, encode, router.route
    applied, in_seq, out_seq = APPLIED.inc, ENGINE_IN_SEQ.set, ENGINE_OUT_SEQ.set
    gc.collect()
    t0 = time.perf_counter()
    for raw in workload.batches:
        batch = decode(raw)
        out: list[Event] = apply_many(batch.first_in_seq, batch.stamps, batch.cmds)
        if metrics:
            applied(len(batch.cmds))
            in_seq(engine.in_seq)
        if not out:
            continue
        blob = enc(out)
        trades = Tally[str]()  # filled by the routing pass in both modes: it is the writer's code either way
        for group in route(out, trades).values():
            enc(group)
        if metrics:
            write = [(out[0].out_seq, blob, out)]
            count_write(write, trades)
            out_seq(out[-1].out_seq)
            if tracer is not None:
                trace_write(tracer, write, time.time_ns())
    seconds = time.perf_counter() - t0
    _check(engine.state_hash(), workload)
    return seconds


def _check(state_hash: object, workload: Workload) -> None:
    if state_hash != workload.final_hash:
        raise RuntimeError("the engine diverged from the generator: the figures would not measure the intended work")


OFF, METRICS, TRACING = "off", "metrics", "metrics + tracing"
MODES = (OFF, METRICS, TRACING)


@dataclass(frozen=True, slots=True)
class Run:
    commands: int
    seconds: dict[str, list[float]]  # mode -> seconds per pass, one per repetition
    spans: int  # spans the tracing passes recorded

    def ratios(self, mode: str) -> list[float]:
        """Per repetition, ``mode``'s throughput / the off pass's: paired, so that drift between repetitions
        cancels."""
        return [off / on for off, on in zip(self.seconds[OFF], self.seconds[mode], strict=True)]

    def rate(self, mode: str) -> float:
        return statistics.median(self.commands / s for s in self.seconds[mode])


def measure(workload: Workload, reps: int, trace_every: int) -> Run:
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        tracer = Tracer(Settings(trace_every=trace_every, trace_dir=tmp), "engine", "engine", "e0")
        for rep in range(reps):
            for mode in MODES[rep % 3 :] + MODES[: rep % 3]:  # rotate: no mode always gets the warmer cache
                seconds[mode].append(_pass(workload, mode != OFF, tracer if mode == TRACING else None))
            print(f"repetition {rep + 1}/{reps}: " + ", ".join(
                f"{m} {workload.n_commands / seconds[m][-1]:,.0f}/s" for m in MODES), flush=True)  # fmt: skip
        tracer.close()
        spans = sum(len(p.read_text().splitlines()) for p in Path(tmp).glob("*.jsonl"))
    return Run(workload.n_commands, seconds, spans)


def render(run: Run, workload: Workload, machine: str, cpu: int | None, args_line: str, trace_every: int) -> str:
    def summary(mode: str) -> str:
        ratios = run.ratios(mode)
        ratio = statistics.median(ratios)
        return (f"**{ratio:.3f}** (median of {len(ratios)} paired repetitions; {min(ratios):.3f} to "
                f"{max(ratios):.3f}; {1 / ratio - 1:+.1%} time per command)")  # fmt: skip

    lines = [
        "# Metrics and tracing cost: the engine with them on and off\n",
        f"Written by `{COMMAND}{args_line}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Every figure below is "
        "inserted by that script from that run: do not edit by hand, run it again.\n",
        "## Result\n",
        f"- Metrics on / off throughput: {summary(METRICS)}, in the worst case of one events-stream write per "
        "journal batch.",
        f"- Metrics and tracing (one command in {trace_every:,}, the local run's rate; {run.spans:,} spans "
        f"written) on / off: {summary(TRACING)}.",
        f"- Off: {run.rate(OFF):,.0f} commands/s; metrics: {run.rate(METRICS):,.0f}; metrics + tracing: "
        f"{run.rate(TRACING):,.0f} (decode + apply + encode + routing, {workload.n_commands:,} commands, "
        f"{workload.n_events:,} events per pass, batches of {workload.config.batch}).\n",
        f"Engine build: {engine_build()}.\n",
        "## What is compared\n",
        " ".join((__doc__ or "").split("\n\n")[2].split()) + "\n",
        "## Machine and code\n",
        machine,
        f"Pinned to CPU {cpu}. A shared virtual machine: compare the paired ratios, not absolute rates across runs.\n",
        "## Reproduce\n",
        f"```sh\n{COMMAND}{args_line}\n```\n",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description="the engine's metrics on vs off, as a ratio")
    parser.add_argument("--measured", type=int, default=100_000, help="commands per pass")
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--trace-every", type=int, default=1000, help="trace one command in this many")
    parser.add_argument("--out", type=Path, default=REPORT)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 10k commands, 2 repetitions")
    args = parser.parse_args(argv)
    if args.quick:
        args.measured, args.reps = 10_000, 2
    shown = (("measured", args.measured), ("reps", args.reps), ("trace-every", args.trace_every))
    args_line = "".join(f" --{k} {v}" for k, v in shown if v != parser.get_default(k.replace("-", "_")))
    machine = machine_markdown()
    cpu = pin(args.cpu)
    workload = build(WorkloadConfig(symbols=1, measured=args.measured, warmup=min(20_000, args.measured)))
    run = measure(workload, args.reps, args.trace_every)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(run, workload, machine, cpu, args_line, args.trace_every))
    print(f"metrics on / off: {statistics.median(run.ratios(METRICS)):.3f}, with tracing "
          f"{statistics.median(run.ratios(TRACING)):.3f}; wrote {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
