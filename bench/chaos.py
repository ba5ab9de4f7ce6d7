"""``python -m bench chaos``: kill -9 the venue's processes one at a time under load, and show that nothing
acknowledged was lost and nothing was doubled.

A private venue (bench/venue/stack.py) takes signed orders and cancels through its front door. A small supervisor
in this process restarts any Mercury process that dies (honcho, which ``./mercury start`` uses, would stop the whole
venue instead). The demo kills with SIGKILL, one after another: the engine, the sequencer, a gateway, a feed, the
PostgreSQL persister and the MongoDB persister. After the load it prints the checks:

1. every new order acknowledged with 200 is in the journal exactly once, at its orderId, as sent; no request id
   and no client order id is journaled twice;
2. the events stream is gap-free, without a duplicate, and equal event for event to a replay of the journal; the
   engine's PUB socket never published an out_seq twice;
3. the live engine's state (a snapshot taken after the load) equals the replay's;
4. PostgreSQL's orders, trades, balances, ledger, history and refusals equal what the events say, with no
   duplicate row; MongoDB's ticks are the trades, once each;
5. per asset, all balances (the fee account's included) add up to deposits minus withdrawals.

The requests that failed while a process was down are counted and shown: they are the answers a client gets
(502 from nginx, 503 -1007 "outcome unknown"), never a lost acknowledgement.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pymongo

from bench.latency import FIRST_ACCOUNT, private_target, say
from bench.machine import REPO, machine_markdown
from bench.venue.accounts import Trader, accounts_for, prepare
from bench.venue.loadgen import Result
from bench.venue.session import Session, Step
from bench.venue.stack import Stack
from bench.venue.verify import verify
from client.sequencer import SequencerClient
from engine.core import Engine
from engine.events_stream import stored_snapshot
from engine.replay import replay, stream_hash
from persistence.apikeys import SecretCipher
from sequencer.journal import Journal
from tests.harness import Service, wait_for
from tests.persistence.checks import assert_database_matches, fetch
from wire import keys
from wire.commands import Deposit, Withdraw
from wire.events import Event, FundingRejected, TradeExecuted
from wire.venue import DEFAULT_VENUE, load_venue

REPORT = REPO / "bench" / "reports" / "venue-chaos.md"
VICTIMS = ("engine", "sequencer", "http-a", "feed-a", "pg-persister", "mongo-persister")


@dataclass
class Restart:
    name: str
    killed_at: float
    back_at: float = 0.0
    exit_code: int | None = None


class Supervisor(threading.Thread):
    """Restarts any of ``services`` whose process has ended, and notes how long each was down."""

    def __init__(self, services: dict[str, Service]) -> None:
        super().__init__(name="bench-supervisor", daemon=True)
        self.services = services
        self.restarts: list[Restart] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.05):
            for name, service in self.services.items():
                proc = service.proc
                if proc is None or proc.poll() is None:
                    continue
                restart = Restart(name, time.monotonic(), exit_code=proc.returncode)
                say(f"supervisor: {name} ended ({proc.returncode}); restarting")
                while not self._halt.is_set():
                    try:
                        service.start()  # returns once its ready line is logged
                        break
                    except (RuntimeError, TimeoutError) as exc:
                        say(f"supervisor: {name} did not start ({str(exc)[:200]}); again")
                        time.sleep(0.5)
                restart.back_at = time.monotonic()
                self.restarts.append(restart)
                say(f"supervisor: {name} back after {restart.back_at - restart.killed_at:.1f} s")

    def close(self) -> None:
        self._halt.set()
        self.join(60)


class Checks:
    """Named checks, each passed or failed with what it saw."""

    def __init__(self) -> None:
        self.results: list[tuple[bool, str, str]] = []

    def check(self, name: str, test: Callable[[], str]) -> None:
        try:
            detail = test()
            self.results.append((True, name, detail))
        except (AssertionError, SystemExit, KeyError, ValueError) as exc:
            self.results.append((False, name, f"{type(exc).__name__}: {str(exc)[:300]}"))

    @property
    def ok(self) -> bool:
        return all(ok for ok, _, _ in self.results)

    def lines(self) -> list[str]:
        return [f"{'PASS' if ok else 'FAIL'}  {name}: {detail}" for ok, name, detail in self.results]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench chaos", description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=300.0, help="requests/s of the load")
    p.add_argument("--between", type=float, default=6.0, help="s between two kills")
    p.add_argument("--quick", action="store_true", help="kill only the engine and a gateway, 3 s apart")
    p.add_argument("--report", type=Path, default=None, help=f"default: {REPORT.relative_to(REPO)} (not --quick)")
    args = p.parse_args(argv)
    args.victims = ("engine", "http-a") if args.quick else VICTIMS
    if args.quick:
        args.between, args.rate = 3.0, 150.0
    if args.report is None and not args.quick:
        args.report = REPORT
    return args


def final_snapshot(stack: Stack) -> int:
    """A snapshot of the live engine after the load; returns its in_seq once it is stored."""
    venue = load_venue(DEFAULT_VENUE)
    with SequencerClient(stack.venue.settings, name="bench-auditor", timeout=10) as c:
        seq = c.submit(c.take_snapshot()).in_seq
    r = stack.venue.r()

    def stored() -> bool:
        data = stored_snapshot(r, stack.venue.shard)
        return data is not None and Engine.restore(venue.symbols, data, venue.assets).in_seq == seq

    try:
        wait_for(stored, 60, "the final snapshot")
    finally:
        r.close()
    return seq


def run_checks(stack: Stack, session: Session, traders: list[Trader], snap_seq: int) -> Checks:
    checks = Checks()
    venue = load_venue(DEFAULT_VENUE)
    settings, shard, pg_url = stack.venue.settings, stack.venue.shard, stack.pg_url
    req = session.requests()
    r = stack.venue.r()
    events: list[Event] = []
    try:
        verdict = verify(req, traders, session.run_tag, settings, shard, pg_url)

        def acked() -> str:
            assert verdict.acked > 0, "no order was acknowledged"
            assert verdict.in_journal == verdict.acked, f"{verdict.acked - verdict.in_journal} not in the journal"
            assert not verdict.journaled_twice, f"{verdict.journaled_twice} client order ids journaled twice"
            assert not verdict.acked_twice, f"{verdict.acked_twice} orderIds acknowledged twice"
            assert verdict.in_postgres == verdict.acked, f"missing in PostgreSQL: {verdict.missing[:10]}"
            unknown = (f"; of {verdict.unknown} new orders answered without an orderId (502, 503 -1007), "
                       f"{verdict.unknown_journaled} were journaled all the same (a client finds them by their "
                       "clientOrderId), the others not" if verdict.unknown else "")  # fmt: skip
            return (f"{verdict.acked:,} acknowledged orders, each once in the journal at its orderId and in "
                    f"PostgreSQL ({verdict.refused_by_engine} refused by the engine){unknown}")  # fmt: skip

        checks.check("acknowledged orders", acked)

        def request_ids() -> str:
            seen: set[tuple[str, int]] = set()
            count = 0
            for batch in Journal(r, keys.journal(shard)).read_from(1):
                for i, cmd in enumerate(batch.cmds):
                    assert (cmd.src, cmd.req) not in seen, f"request id {(cmd.src, cmd.req)} journaled twice"
                    assert batch.first_in_seq + i == count + 1, f"in_seq gap at {count + 1}"
                    seen.add((cmd.src, cmd.req))
                    count += 1
            return f"{count:,} commands, in_seq 1..{count:,} gap-free, no request id twice"

        checks.check("journal", request_ids)
        result = replay(r, venue, keep=events)

        def stream() -> str:
            first, count, digest = stream_hash(r, shard)
            again = replay(r, venue, hash_from=first)
            assert (count, digest) == (again.events, again.events_hash), "the events stream differs from the replay"
            return (f"out_seq {first:,}..{first + count - 1:,} gap-free and unique (trimmed below {first:,} by the "
                    f"persisters), equal to a replay of the journal event for event")  # fmt: skip

        checks.check("events stream", stream)

        def published() -> str:
            ranges = np.frombuffer(session.seen().batches, dtype=np.int64).reshape(-1, 2)
            seen = np.concatenate([np.arange(a, b + 1) for a, b in ranges.tolist()]) if len(ranges) else ranges
            dupes = len(seen) - len(np.unique(seen))
            assert dupes == 0, f"{dupes} out_seq published twice"
            return f"{len(seen):,} events seen on the engine's PUB during the load, none twice"

        checks.check("engine PUB", published)

        def state() -> str:
            data = stored_snapshot(r, shard)
            assert data is not None
            live = Engine.restore(venue.symbols, data, venue.assets)
            assert live.state_hash() == replay(r, venue, upto=snap_seq).state_hash, "live state differs from replay"
            return f"the live engine's snapshot at in_seq {snap_seq:,} equals the replay's (books, balances)"

        checks.check("engine state", state)

        def postgres() -> str:
            assert_database_matches(pg_url, result.engine, events)
            for table, key in (("orders", "order_id"), ("trades", "symbol, trade_id")):
                (row,) = fetch(pg_url, f"SELECT count(*) AS n, count(DISTINCT ({key})) AS d FROM {table}")
                assert row["n"] == row["d"], f"{table}: {row['n'] - row['d']} duplicate rows"
            (orders,) = fetch(pg_url, "SELECT count(*) AS n FROM orders")
            (trades,) = fetch(pg_url, "SELECT count(*) AS n FROM trades")
            return (f"{orders['n']:,} orders, {trades['n']:,} trades, balances, ledger and history equal the "
                    "events; no duplicate; nothing quarantined")  # fmt: skip

        checks.check("PostgreSQL", postgres)

        def mongo() -> str:
            trades = {f"{t.symbol}:{t.trade_id}" for t in events if isinstance(t, TradeExecuted)}
            client: pymongo.MongoClient[dict[str, Any]]
            client = pymongo.MongoClient(stack.mongo_url, serverSelectionTimeoutMS=5000)
            try:
                db = client.get_default_database()

                def stored() -> int:
                    return int((db.consumer_offsets.find_one({"_id": "mongo"}) or {}).get("out_seq", 0))

                wait_for(lambda: stored() >= events[-1].out_seq, 120, "the MongoDB persister")
                ticks = [d["_id"] for d in db.ticks.find({}, {"_id": 1})]
            finally:
                client.close()
            assert len(ticks) == len(set(ticks)), "duplicate ticks"
            assert set(ticks) == trades, f"ticks {len(ticks):,} vs trades {len(trades):,}"
            return f"{len(ticks):,} ticks, exactly the trades, once each"

        checks.check("MongoDB", mongo)

        def conserved() -> str:
            refused = {ev.in_seq for ev in events if isinstance(ev, FundingRejected)}
            net: defaultdict[str, int] = defaultdict(int)
            for batch in Journal(r, keys.journal(shard)).read_from(1):
                for i, cmd in enumerate(batch.cmds):
                    if isinstance(cmd, Deposit | Withdraw) and batch.first_in_seq + i not in refused:
                        net[cmd.asset] += cmd.amount if isinstance(cmd, Deposit) else -cmd.amount
            held: defaultdict[str, int] = defaultdict(int)
            for by_asset in result.engine.accounts.balances.values():
                for asset, b in by_asset.items():
                    held[asset] += b.free + b.locked
            assert {a: v for a, v in held.items() if v} == {a: v for a, v in net.items() if v}, (held, net)
            return "per asset, all balances (fee account included) = deposits - withdrawals: " + ", ".join(
                f"{a} {v:,}" for a, v in sorted(net.items())
            )

        checks.check("balances conserved", conserved)
    finally:
        r.close()
    return checks


def render(args: argparse.Namespace, argv: Sequence[str], transcript: list[str]) -> str:
    out = ["# Chaos: kill -9 under load, nothing lost, nothing doubled", ""]
    out += ["Reproduce: `python -m bench chaos" + "".join(f" {a}" for a in argv) + "`", "", machine_markdown(), ""]
    out += ["What `python -m bench chaos` printed (bench/chaos.py describes each check):", "", "```"]
    return "\n".join([*out, *transcript, "```", ""])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    transcript: list[str] = []

    def show(line: str = "") -> None:
        print(line, flush=True)
        transcript.append(line)

    seconds = args.between * (len(args.victims) + 1)
    with tempfile.TemporaryDirectory(prefix="mercury-bench-chaos-") as tmp:
        Path(tmp).chmod(0o755)
        stack = Stack(Path(tmp))
        session: Session | None = None
        supervisor: Supervisor | None = None
        try:
            stack.start(say)
            target = private_target(stack)
            accounts = accounts_for(args.rate)
            traders = prepare(
                stack.venue.settings, stack.pg_url, SecretCipher.from_env(stack.env), FIRST_ACCOUNT, accounts
            )
            session = Session(target, traders)
            supervisor = Supervisor({k: v for k, v in stack.services.items() if k != "frontdoor"})
            supervisor.start()
            plan = session.plan(args.rate, seconds)
            session.next_index += int(args.rate * seconds)
            show(f"load: {args.rate:,.0f} requests/s for {seconds:.0f} s through {stack.url}; "
                 f"kill -9 every {args.between:.0f} s: {', '.join(args.victims)}")  # fmt: skip
            session.loader.run(plan)
            time.sleep(max(0.0, (plan.start_ns - time.time_ns()) / 1e9))
            for name in args.victims:
                time.sleep(args.between)
                proc = stack.services[name].proc
                assert proc is not None
                os.kill(proc.pid, signal.SIGKILL)
                show(f"t+{(time.time_ns() - plan.start_ns) / 1e9:5.1f} s  kill -9 {name} (pid {proc.pid})")
            result = session.loader.result(timeout=seconds + 120)
            session.steps.append(_as_step(result, plan.start_ns, seconds))
            wait_for(session.caught_up, 120, "the engine and the persisters to catch up")
            supervisor.close()
            for rs in supervisor.restarts:
                show(f"{rs.name}: killed ({rs.exit_code}), restarted by the supervisor, back in "
                     f"{rs.back_at - rs.killed_at:.1f} s")  # fmt: skip
            req = session.requests()
            show()
            show("answers during the run (requests that failed while a process was down are expected):")
            for (kind, cls), n in sorted(req.counts().items(), key=lambda kv: -kv[1]):
                show(f"  {kind:10s} {cls:40s} {n:8,}")
            snap = final_snapshot(stack)
            show()
            checks = run_checks(stack, session, list(traders), snap)
            for line in checks.lines():
                show(line)
            show()
            show("nothing acknowledged lost, nothing doubled" if checks.ok else "CHECKS FAILED")
        finally:
            if supervisor is not None:
                supervisor.close()
            if session is not None:
                session.close()
            stack.stop()
    if args.report is not None:
        args.report.write_text(render(args, list(sys.argv[1:] if argv is None else argv), transcript))
        say(f"wrote {args.report}")
    return 0 if checks.ok else 1


def _as_step(result: Result, start_ns: int, seconds: float) -> Step:
    """The load's result kept as a step of the session, for ``Session.requests``."""
    return Step("chaos", 0.0, seconds, result, start_ns, start_ns + int(seconds * 1e9), {}, 0.0, 0.0, True, 0, 0)
