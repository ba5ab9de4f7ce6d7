"""``python -m bench latency``: the whole venue's latency per hop and its highest sustained order rate.

A private venue is started like ``./mercury start`` (bench.venue.stack: Redis, PostgreSQL, FerretDB, sequencer,
engine, both persisters, two HTTP gateways, two feeds, nginx's front door), with funded accounts and API keys. One
load process sends signed new orders and cancels through the front door, open loop, while observers note where
each order was seen (bench.venue.observe). Steps: a warm-up, a latency step at ``--rate`` (1,000 orders/s), then a
ramp of short steps until one is not sustained (bench.venue.session.judge), refined once between the last good
and the first bad rate. Report: bench/reports/venue-latency.md and its figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.machine import REPO
from bench.pipeline.cpu import background_busy
from bench.venue.accounts import accounts_for, prepare
from bench.venue.hops import Hop, hops_of
from bench.venue.plots import plot
from bench.venue.report import render
from bench.venue.session import SETTLE_S, Session, Step, Target
from bench.venue.stack import Stack
from persistence.apikeys import SecretCipher
from wire.venue import DEFAULT_VENUE, load_venue

REPORTS = REPO / "bench" / "reports"
SYMBOL = "BTCUSDT"
MID = 6_000_000  # ticks: 60,000.00 USDT, the flow's mid on a fresh venue (where the simulator starts BTC too)
FIRST_ACCOUNT = 1_000_001


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@dataclass
class LatencyRun:
    argv: list[str]
    started: str
    background_busy: float
    accounts: int
    steps: list[Step] = field(default_factory=list)
    hops: dict[str, dict[str, Hop]] = field(default_factory=dict)  # step label -> hop name -> Hop
    session: Session | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    reconnects: dict[str, int] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)  # the engine's refusals of the load's commands

    def best(self) -> Step | None:
        ok = [s for s in self.steps if s.sustained and s.label != "warm-up"]
        return max(ok, key=lambda s: s.rate) if ok else None


def private_target(stack: Stack) -> Target:
    spec = load_venue(DEFAULT_VENUE).spec(SYMBOL)
    streams = {"front door": stack.url.replace("http://", "ws://")}
    streams.update({name: ws for name, (_, ws) in zip(("feed-a", "feed-b"), stack.feed_urls, strict=True)})
    return Target(stack.url, stack.venue.settings, stack.pg_url, stack.venue.shard, spec, MID, streams)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench latency", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a smoke run: low rates, short steps (about a minute)")
    p.add_argument("--rate", type=float, default=1000.0, help="orders/s of the latency step")
    p.add_argument("--seconds", type=float, default=15.0, help="length of the latency step")
    p.add_argument("--ramp", default="1500,2000,2500,3000,4000,6000,8000,10000", help="rates of the ramp steps")
    p.add_argument("--step-seconds", type=float, default=8.0, help="length of each ramp step")
    p.add_argument("--out", type=Path, default=REPORTS, help="where venue-latency.md and its figures go")
    p.add_argument("--keep", type=Path, default=None, help="run the venue in this directory and keep its logs")
    args = p.parse_args(argv)
    args.ramp = [float(v) for v in args.ramp.split(",") if v]
    if args.quick:
        args.rate, args.seconds, args.ramp, args.step_seconds = 200.0, 3.0, [400.0], 3.0
    return args


def ramp(session: Session, rates: list[float], seconds: float, start: Step) -> None:
    """From the latency step: up through ``rates`` until a step is not sustained (or, if the latency step was not,
    down by quarters until one is), then once between the best rate and the first failure."""
    failed: float | None = None if start.sustained else start.rate
    if not start.sustained:
        rates = [start.rate * f for f in (0.75, 0.5, 0.25)]
    for rate in rates:
        step = session.step(f"ramp {rate:,.0f}/s", rate, seconds)
        say(f"  {rate:,.0f}/s: {'sustained' if step.sustained else 'NOT sustained: ' + step.why}")
        if start.sustained and not step.sustained:
            failed = rate
            break
        if not start.sustained and step.sustained:
            break
        failed = rate if not step.sustained else failed
    good = [s.rate for s in session.steps if s.sustained and s.label != "warm-up"]
    if failed is not None and good:
        grain = 250 if failed > 2_000 else 50
        mid = round((max(good) + failed) / 2 / grain) * grain
        if max(good) < mid < failed:
            step = session.step(f"ramp {mid:,.0f}/s", mid, seconds)
            say(f"  {mid:,.0f}/s: {'sustained' if step.sustained else 'NOT sustained: ' + step.why}")


def execute(args: argparse.Namespace, directory: Path) -> LatencyRun:
    t0 = time.monotonic()
    run = LatencyRun(list(sys.argv[1:]) if args.argv is None else list(args.argv),
                     time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), background_busy(),
                     accounts_for(max([args.rate, *args.ramp])))  # fmt: skip
    stack = Stack(directory)
    session: Session | None = None
    try:
        stack.start(say)
        target = private_target(stack)
        say(f"creating {run.accounts} funded accounts with API keys")
        traders = prepare(stack.venue.settings, stack.pg_url, SecretCipher.from_env(stack.env),
                          FIRST_ACCOUNT, run.accounts)  # fmt: skip
        session = run.session = Session(target, traders, stack.processes())
        say("warm-up")
        session.step("warm-up", min(args.rate, 200.0), 1.0 if args.quick else 3.0)
        say(f"latency step at {args.rate:,.0f}/s for {args.seconds:.0f} s")
        step = session.step(f"latency {args.rate:,.0f}/s", args.rate, args.seconds)
        say(f"  {'sustained' if step.sustained else 'NOT sustained: ' + step.why}")
        say("ramp")
        ramp(session, args.ramp, args.step_seconds, step)
    finally:
        if session is not None:
            session.close()
        run.warnings = stack.logs_with(" WARNING ", " ERROR ", " CRITICAL ")
        stack.stop()
    run.steps = session.steps
    run.reconnects = dict(session.watchers.reconnects)
    seen = session.seen()
    run.refusals = dict(seen.refusals)
    req = session.requests()
    for s in run.steps:
        rows = (req.sched >= s.t0 + int(SETTLE_S * 1e9)) & (req.sched < s.t1)
        run.hops[s.label] = hops_of(req, rows, seen, session.watchers)
    run.seconds = time.monotonic() - t0
    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = None if argv is None else list(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        run = execute(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="mercury-bench-venue-") as tmp:
            Path(tmp).chmod(0o755)
            run = execute(args, Path(tmp))
    args.out.mkdir(parents=True, exist_ok=True)
    figures = plot(run, args.out)
    report = args.out / "venue-latency.md"
    report.write_text(render(run, figures))
    say(f"wrote {report} ({run.seconds:.0f} s)")
    return 0
