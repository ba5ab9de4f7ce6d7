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

Tracing (OpenTelemetry) is not built yet: there is no "tracing on" pass to report.
"""

from __future__ import annotations

import argparse
import gc
import statistics
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
from engine.topics import ALL_TOPIC, TopicRouter
from wire.codec import decode_batch, encode
from wire.events import Event

REPORT = Path(__file__).resolve().parent / "reports" / "metrics-cost.md"
COMMAND = "python -m bench.metrics_cost"


def _router() -> TopicRouter:
    """Subscriptions as in the local run: the feeds read ``x/`` (every batch), gateways a few users' accounts."""
    router = TopicRouter()
    for prefix in (ALL_TOPIC, *(b"a/%d/" % account for account in range(1, 11))):
        router.subscribe(prefix)
    return router


def _pass(workload: Workload, metrics: bool) -> float:
    """One pass of the engine process's per-batch CPU work, with or without its metric updates."""
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
            count_write([(out[0].out_seq, blob, out)], trades)
            out_seq(out[-1].out_seq)
    seconds = time.perf_counter() - t0
    _check(engine.state_hash(), workload)
    return seconds


def _check(state_hash: object, workload: Workload) -> None:
    if state_hash != workload.final_hash:
        raise RuntimeError("the engine diverged from the generator: the figures would not measure the intended work")


@dataclass(frozen=True, slots=True)
class Run:
    commands: int
    off: list[float]  # seconds per pass
    on: list[float]

    def ratios(self) -> list[float]:
        """Per repetition, on-throughput / off-throughput: paired, so that drift between repetitions cancels."""
        return [off / on for off, on in zip(self.off, self.on, strict=True)]


def measure(workload: Workload, reps: int) -> Run:
    off: list[float] = []
    on: list[float] = []
    for rep in range(reps):
        if rep % 2:  # alternate which pass goes first: neither always gets the warmer cache
            on.append(_pass(workload, True))
            off.append(_pass(workload, False))
        else:
            off.append(_pass(workload, False))
            on.append(_pass(workload, True))
        print(f"repetition {rep + 1}/{reps}: off {workload.n_commands / off[-1]:,.0f}/s, "
              f"on {workload.n_commands / on[-1]:,.0f}/s", flush=True)  # fmt: skip
    return Run(workload.n_commands, off, on)


def render(run: Run, workload: Workload, machine: str, cpu: int | None, args_line: str) -> str:
    ratios = run.ratios()
    off_rate = statistics.median(run.commands / s for s in run.off)
    on_rate = statistics.median(run.commands / s for s in run.on)
    ratio = statistics.median(ratios)
    lines = [
        "# Metrics cost: the engine with its metrics on and off\n",
        f"Written by `{COMMAND}{args_line}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Every figure below is "
        "inserted by that script from that run: do not edit by hand, run it again.\n",
        "## Result\n",
        f"- Metrics on / off throughput: **{ratio:.3f}** (median of {len(ratios)} paired repetitions; "
        f"{min(ratios):.3f} to {max(ratios):.3f}), i.e. the metrics cost {1 / ratio - 1:+.1%} time per command "
        "in the worst case of one events-stream write per journal batch.",
        f"- Off: {off_rate:,.0f} commands/s; on: {on_rate:,.0f} commands/s (decode + apply + encode + routing, "
        f"{workload.n_commands:,} commands, {workload.n_events:,} events per pass, batches of "
        f"{workload.config.batch}).",
        "- Tracing: not built yet, so there is no tracing-on figure.\n",
        f"Engine build: {engine_build()}.\n",
        "## What is compared\n",
        (__doc__ or "").split("\n\n")[1].replace("\n", " ") + "\n",
        "## Machine and code\n",
        machine,
        f"Pinned to CPU {cpu}. A shared virtual machine: compare the paired ratio, not absolute rates across runs.\n",
        "## Reproduce\n",
        f"```sh\n{COMMAND}{args_line}\n```\n",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description="the engine's metrics on vs off, as a ratio")
    parser.add_argument("--measured", type=int, default=100_000, help="commands per pass")
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--out", type=Path, default=REPORT)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 10k commands, 2 repetitions")
    args = parser.parse_args(argv)
    if args.quick:
        args.measured, args.reps = 10_000, 2
    args_line = "".join(
        f" --{k} {v}" for k, v in (("measured", args.measured), ("reps", args.reps)) if v != parser.get_default(k)
    )
    machine = machine_markdown()
    cpu = pin(args.cpu)
    workload = build(WorkloadConfig(symbols=1, measured=args.measured, warmup=min(20_000, args.measured)))
    run = measure(workload, args.reps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(run, workload, machine, cpu, args_line))
    print(f"metrics on / off: {statistics.median(run.ratios()):.3f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
