"""Pipeline benchmark: client -> sequencer -> Redis journal -> engine -> events back at the client.

The command line of ``python -m bench.pipeline``; the package's docstring (bench/pipeline/__init__.py) describes
the run."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from bench.pipeline.constants import REPORTS
from bench.pipeline.plots import plot
from bench.pipeline.report import render
from bench.pipeline.run import execute
from bench.pipeline.steps import _say


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
