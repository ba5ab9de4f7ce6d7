"""``python -m bench load``: signed orders at a fixed rate through a venue's front door, every answer accounted for,
and no acknowledged order missing.

    python -m bench load --url http://127.0.0.1:8080 --rate 10000 --seconds 30 [--accounts N]
    python -m bench load --private --rate 2000 --seconds 30

Against a running venue (by default the front door of ``./mercury start``) it creates and funds its own accounts
and API keys, the way ``frontdoor/welcome.py`` makes the demo account's: the venue's settings come from the
``MERCURY_*`` environment as for any Mercury process (the defaults are ``./mercury start``'s), and the API secrets
are encrypted with ``MERCURY_KEY_ENCRYPTION_KEY`` (read from ``var/key-encryption-key`` when it is not set).
``--private`` starts a private venue instead (bench/venue/stack.py) and, if the ``sim`` package exists, the market
simulator beside the load.

The load (bench/venue/flow.py) is new orders and cancels over REST, open loop. Every answer is counted by class;
the run fails (exit 1) on any answer other than 200 and the venue's documented refusals under load (429 -1003 /
-1015, 503 -1008), and when an acknowledged order is not in the journal or, once the persister has caught up, in
PostgreSQL. A venue's per-IP request weight limit (6,000 a minute by default) applies to the whole load, which
reaches the gateways from nginx's address: expect 429 -1003 beyond 100 orders/s unless the venue was started with
``MERCURY_WEIGHT_PER_MINUTE`` raised (--private raises it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from bench.latency import FIRST_ACCOUNT, MID, SYMBOL, private_target, say
from bench.machine import REPO, machine_markdown
from bench.venue.accounts import accounts_for, prepare
from bench.venue.hops import Hop, hops_of
from bench.venue.report import cpu_rows, hop_table
from bench.venue.session import Session, Step, Target
from bench.venue.stack import Stack
from bench.venue.tally import ALLOWED, Requests, failures
from bench.venue.verify import Verdict, verify
from persistence.apikeys import ENV_KEY, SecretCipher
from wire.config import load_settings
from wire.venue import DEFAULT_VENUE, SymbolSpec, load_venue

REPORT = REPO / "bench" / "reports" / "venue-load.md"
REMOTE_FIRST_ACCOUNT = 5_000_001  # the load's accounts on a shared venue (the demo account is 1000)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench load", description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the venue's front door")
    p.add_argument("--rate", type=float, default=10_000.0, help="requests/s (new orders and cancels)")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--accounts", type=int, default=0, help="trading accounts (default: enough for the order limit)")
    p.add_argument("--orders-per-10s", type=int, default=100, help="the venue's MERCURY_ORDERS_PER_10S")
    p.add_argument("--first-account", type=int, default=0, help="id of the first account the load creates")
    p.add_argument("--private", action="store_true", help="start a private venue instead of using --url")
    p.add_argument("--quick", action="store_true", help="with --private: a smoke run (300/s for 5 s)")
    p.add_argument("--keep", type=Path, default=None, help="with --private: run the venue here and keep its logs")
    p.add_argument("--verify-timeout", type=float, default=120.0, help="s to wait for the persister to catch up")
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        help=f"write a markdown report here (default with --private: {REPORT.relative_to(REPO)})",
    )
    p.add_argument("--bad-every", type=int, default=0, help=argparse.SUPPRESS)  # tests: inject refused orders
    args = p.parse_args(argv)
    if args.quick:
        args.rate, args.seconds = 300.0, 5.0
    if args.report is None and args.private and not args.quick:
        args.report = REPORT
    return args


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def market_mid(url: str, spec: SymbolSpec) -> int:
    """Ticks to trade around: the symbol's last price on the venue (its price band is centred there), else the
    middle of its book, else a fresh venue's MID."""
    try:
        last = _get(f"{url}/api/v3/ticker/price?symbol={spec.symbol}")
        price = Decimal(str(last["price"])) if isinstance(last, dict) else Decimal(0)
        if price > 0:
            return int(price / spec.tick_size)
        book = _get(f"{url}/api/v3/depth?symbol={spec.symbol}&limit=5")
        if isinstance(book, dict) and book.get("bids") and book.get("asks"):
            mid = (Decimal(book["bids"][0][0]) + Decimal(book["asks"][0][0])) / 2
            return int(mid / spec.tick_size)
    except (OSError, ValueError, KeyError):
        pass
    return MID


def _cipher() -> SecretCipher:
    env = dict(os.environ)
    if not env.get(ENV_KEY):
        saved = REPO / "var" / "key-encryption-key"
        if saved.exists():
            env[ENV_KEY] = saved.read_text().strip()
    return SecretCipher.from_env(env)


@dataclass
class LoadRun:
    args: argparse.Namespace
    step: Step
    requests: Requests
    verdict: Verdict
    accounts: int
    sim: str  # what became of the simulator
    hops: dict[str, Hop]
    refusals: dict[str, int]  # the engine's refusals (OrderRejected, CancelRejected reasons) seen during the load


def tally_lines(run: LoadRun) -> list[str]:
    s, req = run.step, run.requests
    ok = int(req.ok().sum())
    out = [f"requests: {len(req.kind):,} due over {s.seconds:.0f} s (offered {s.rate:,.0f}/s); answered 200: {ok:,} "
           f"({ok / s.seconds:,.0f}/s)", "", "| request | answer | count | |"]  # fmt: skip
    out.append("| --- | --- | ---: | --- |")
    v = run.verdict
    bad = failures(req.counts(), raced_cancels_verified=v.raced_cancels_closed == v.raced_cancels)
    for (kind, cls), n in sorted(req.counts().items(), key=lambda kv: (kv[0][0], -kv[1])):
        note = "FAILURE" if (kind, cls) in bad else ALLOWED.get(cls, "")
        out.append(f"| {kind} | {cls} | {n:,} | {note} |")
    answered = req.ok() & (req.resp > 0) & (req.sent > 0)
    if answered.any():
        rt = (req.resp[answered] - req.sent[answered]) / 1e6
        due = (req.resp[answered] - req.sched[answered]) / 1e6
        out += ["", f"written -> answer (200s): p50 {np.percentile(rt, 50):.1f} ms, p99 {np.percentile(rt, 99):.1f} ms,"
                f" max {rt.max():.0f} ms; due -> answer p99 {np.percentile(due, 99):.1f} ms"]  # fmt: skip
    return out


def exit_code(run: LoadRun) -> int:
    v = run.verdict
    bad = failures(run.requests.counts(), raced_cancels_verified=v.raced_cancels_closed == v.raced_cancels)
    return 0 if not bad and v.ok and v.persister_caught_up else 1


def start_sim(stack: Stack) -> tuple[subprocess.Popen[bytes] | None, str]:
    if importlib.util.find_spec("sim") is None:
        return None, "not run: there is no `sim` package in this checkout yet"
    log = open(stack.dir / "sim.log", "ab")
    # no FIX gateway in the private venue; the bots' keys stay in the run's directory, not in var/sim
    argv = ["--url", stack.url, "--seed", "1", "--rate", "20", "--no-fix", "--state-dir", str(stack.dir / "sim")]
    proc = subprocess.Popen([sys.executable, "-m", "sim", *argv], env=stack.env, cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    log.close()
    return proc, f"`python -m sim {' '.join(argv)}` ran beside the load"


def execute(args: argparse.Namespace) -> LoadRun:
    accounts = args.accounts or accounts_for(args.rate, args.orders_per_10s)
    spec = load_venue(DEFAULT_VENUE).spec(SYMBOL)
    stack: Stack | None = None
    sim: subprocess.Popen[bytes] | None = None
    sim_note = "not run against a running venue (start it yourself beside the load)"
    tmp = tempfile.TemporaryDirectory(prefix="mercury-bench-load-") if args.private and not args.keep else None
    session: Session | None = None
    try:
        if args.private:
            where = args.keep if tmp is None else Path(tmp.name)
            where.mkdir(parents=True, exist_ok=True)
            where.chmod(0o755)
            stack = Stack(where).start(say)
            target = private_target(stack)
            settings, cipher, first = stack.venue.settings, SecretCipher.from_env(stack.env), FIRST_ACCOUNT
        else:
            settings, cipher = load_settings(), _cipher()
            first = args.first_account or REMOTE_FIRST_ACCOUNT
            target = Target(args.url.rstrip("/"), settings, settings.postgres_url, load_venue(DEFAULT_VENUE).shard,
                            spec, market_mid(args.url.rstrip("/"), spec),
                            {"front door": args.url.rstrip("/").replace("http://", "ws://")})  # fmt: skip
        say(f"creating {accounts:,} funded accounts with API keys (first {first})")
        traders = prepare(settings, target.pg_url, cipher, first, accounts)
        if stack is not None:
            sim, sim_note = start_sim(stack)
        session = Session(target, traders, stack.processes() if stack is not None else None, args.orders_per_10s,
                          accounts)  # fmt: skip
        say(f"load: {args.rate:,.0f} requests/s for {args.seconds:.0f} s through {target.url}")
        step = session.step("load", args.rate, args.seconds, bad_every=args.bad_every, drain_s=args.verify_timeout)
        req = session.requests()
        say("checking every acknowledged order in the journal and in PostgreSQL")
        verdict = verify(req, traders, session.run_tag, settings, target.shard, target.pg_url, args.verify_timeout)
        if sim is not None and sim.poll() is not None:
            sim_note += f" (it exited early with code {sim.returncode}: see its log)"
        seen = session.seen()
        hops = hops_of(req, np.ones(len(req.kind), bool), seen, session.watchers)
        return LoadRun(args, step, req, verdict, accounts, sim_note, hops, dict(seen.refusals))
    finally:
        if session is not None:
            session.close()
        if sim is not None and sim.poll() is None:
            sim.terminate()
            try:
                sim.wait(10)
            except subprocess.TimeoutExpired:
                sim.kill()
        if stack is not None:
            stack.stop()
        if tmp is not None:
            tmp.cleanup()


def render(run: LoadRun, argv: Sequence[str]) -> str:
    s = run.step
    out = ["# Load test: signed orders through the front door, every answer accounted for", ""]
    out += ["Reproduce: `python -m bench load" + "".join(f" {a}" for a in argv) + "`", "", machine_markdown(), ""]
    out += [f"{run.accounts:,} funded accounts with HMAC keys; new orders (ACK) and cancels over REST, open loop. "
            f"Simulator: {run.sim}.", ""]  # fmt: skip
    out += [*tally_lines(run), ""]
    out += [
        "The engine's refusals of the load's commands (an ACK answer comes before the engine's verdict): "
        + (", ".join(f"{k} x{v}" for k, v in run.refusals.items()) or "none")
        + ".",
        "",
    ]
    out += ["## No acknowledged order missing", "", *[f"    {line}" for line in run.verdict.lines()], ""]
    if run.hops:
        out += ["## Latency per hop", "", *hop_table(run.hops), ""]
    if s.cpu:
        out += ["## CPU per process (% of one core)", "", *cpu_rows([s]), ""]
    out += [f"Verdict: {'PASS' if exit_code(run) == 0 else 'FAIL'}", ""]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.monotonic()
    run = execute(args)
    for line in [*tally_lines(run), "", *run.verdict.lines()]:
        print(line)
    code = exit_code(run)
    print(f"the engine's refusals: {', '.join(f'{k} x{v}' for k, v in run.refusals.items()) or 'none'}")
    print(f"simulator: {run.sim}")
    served = int(run.requests.ok().sum()) / run.step.seconds
    verdict = "PASS: no unexpected answer, no acknowledged order missing" if code == 0 else "FAIL: see above"
    print(f"{verdict} ({time.monotonic() - t0:.0f} s)")
    print(f"answered 200: {served:,.0f} requests/s of {run.step.rate:,.0f}/s offered ({served / run.step.rate:.0%})")
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(render(run, list(sys.argv[1:] if argv is None else argv)))
        say(f"wrote {args.report}")
    return code
