"""``python -m bench.fix``: orders per second through the FIX gateway, and the round trip NewOrderSingle ->
ExecutionReport (New), over 1 session and over 10.

A real exchange is started here (Redis, sequencer, engine, PostgreSQL with its persister, and the FIX gateway with
ten bench sessions), with funded accounts and API keys. QuickFIX initiators in this process log the sessions on; a
sender thread per session keeps ``--window`` orders in flight (a new one as soon as one is acknowledged) for
``--seconds``: LIMIT IOC buys below the best ask, so each is accepted and expires at once and the book stays the
same. The round trip is from handing the order to QuickFIX to QuickFIX handing back its ExecutionReport New. CPU
per process is read from /proc over each step.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import quickfix
from hdrh.histogram import HdrHistogram

from bench.gateway import Bench, cpu_of
from bench.machine import REPO, machine_markdown
from gateways.fix.bridge import SWITCH_INTERVAL
from persistence.apikeys import ENV_KEY
from tests.gateways.fix_support import Client, initiator
from tests.harness import PostgresServer, Service, free_port

REPORT = REPO / "bench" / "reports" / "fix.md"
SESSIONS = 10


class Sender(Client):
    """A bench session: sends orders from its own thread, timing each to its ExecutionReport New."""

    def __init__(self, key: str, secret: str, window: int) -> None:
        super().__init__(key, secret)
        self.slots = threading.Semaphore(window)
        self.sent: dict[str, int] = {}
        self.histogram = HdrHistogram(1, 60_000_000, 3)
        self.acked = 0
        self.rejected = 0
        self.lock = threading.Lock()

    def fromApp(self, message: quickfix.Message, session_id: quickfix.SessionID) -> None:
        exec_type = message.getField(150) if message.isSetField(150) else ""
        if exec_type not in ("0", "8"):
            return  # the IOC's expiry: not what is timed
        now = time.perf_counter_ns()
        with self.lock:
            sent = self.sent.pop(message.getField(11), None)
            if exec_type == "0":
                self.acked += 1
            else:
                self.rejected += 1
        if sent is not None:
            self.histogram.record_value(max(1, (now - sent) // 1_000))
        self.slots.release()

    def run(self, name: str, until: float) -> None:
        n = 0
        while time.monotonic() < until:
            if not self.slots.acquire(timeout=1):
                continue
            n += 1
            cl_ord_id = f"{name}-{n}"
            with self.lock:
                self.sent[cl_ord_id] = time.perf_counter_ns()
            self.send("D", {11: cl_ord_id, 55: "BTCUSDT", 54: "1", 38: "0.01", 40: "2", 44: "999.00", 59: "3",
                            60: "20260101-00:00:00.000"})  # fmt: skip


@dataclass
class Step:
    sessions: int
    window: int
    seconds: float
    acked: int
    rejected: int
    histogram: HdrHistogram
    cpu: dict[str, float]  # % of one core

    def ms(self, q: float) -> float:
        return float(self.histogram.get_value_at_percentile(q)) / 1000


def run_step(senders: list[tuple[str, Sender]], seconds: float, window: int, pids: dict[str, int]) -> Step:
    before, t0 = cpu_of(pids), time.monotonic()
    threads = [threading.Thread(target=s.run, args=(name, t0 + seconds)) for name, s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(1)  # the last acknowledgements
    elapsed = time.monotonic() - t0
    after = cpu_of(pids)
    histogram = HdrHistogram(1, 60_000_000, 3)
    for _, s in senders:
        histogram.add(s.histogram)
    return Step(len(senders), window, elapsed - 1,
                sum(s.acked for _, s in senders), sum(s.rejected for _, s in senders), histogram,
                {k: (after[k] - before[k]) / elapsed * 100 for k in after})  # fmt: skip


def render(steps: Sequence[Step], argv: Sequence[str], window: int) -> str:
    out = ["# FIX gateway: orders per second and round trip", ""]
    out += ["Reproduce: `" + " ".join(["python -m bench.fix", *argv]) + "`", "", machine_markdown(), ""]
    out += [f"Each session keeps {window} orders in flight (LIMIT IOC, acknowledged New then expired).",
            "Round trip: NewOrderSingle handed to QuickFIX -> its ExecutionReport New handed back, in this process.",
            ""]  # fmt: skip
    roles = sorted({r for s in steps for r in s.cpu})
    out += ["| sessions | orders/s | p50 ms | p99 ms | p99.9 ms | max ms | rejected | "
            + " | ".join(f"CPU {r}" for r in roles) + " |",
            "|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(roles)]  # fmt: skip
    for s in steps:
        cpu = " | ".join(f"{s.cpu.get(r, 0):.0f}%" for r in roles)
        out.append(f"| {s.sessions} | {s.acked / s.seconds:,.0f} | {s.ms(50):.2f} | {s.ms(99):.2f} | "
                   f"{s.ms(99.9):.2f} | {s.histogram.get_max_value() / 1000:.2f} | {s.rejected} | {cpu} |")  # fmt: skip
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--window", type=int, default=8, help="orders in flight per session")
    args = parser.parse_args(argv)
    # QuickFIX's threads call back into Python: hand the GIL over sooner than every 5 ms (as the gateway does)
    sys.setswitchinterval(SWITCH_INTERVAL)
    postgres = PostgresServer()
    postgres.start()
    steps: list[Step] = []
    try:
        with tempfile.TemporaryDirectory(prefix="mercury-bench-fix-") as tmp:
            directory = Path(tmp)
            bench = Bench(directory, postgres)
            bench.start(0)
            config = directory / "fix.toml"
            config.write_text('sender_comp_id = "MERCURY"\n' + "".join(
                f'[[sessions]]\ntarget_comp_id = "BENCH{i}"\n' for i in range(1, SESSIONS + 1)))  # fmt: skip
            port = free_port()
            env = dict(bench.venue.env, MERCURY_POSTGRES_URL=bench.pg_url, **{ENV_KEY: bench.kek},
                       MERCURY_FIX_PORT=str(port), MERCURY_FIX_CONFIG_FILE=str(config),
                       MERCURY_FIX_STATE_DIR=str(directory / "fix"), MERCURY_ORDERS_PER_10S="100000000",
                       MERCURY_ORDERS_PER_DAY="1000000000", MERCURY_WEIGHT_PER_MINUTE="100000000")  # fmt: skip
            gateway = Service("gateways.fix", env, directory / "fix.log", "FIX gateway on")
            gateway.start()
            pids = bench.pids()
            assert gateway.proc is not None
            pids["FIX gateway"] = gateway.proc.pid
            try:
                for count in (1, SESSIONS):
                    senders = []
                    with contextlib.ExitStack() as stack:
                        for i in range(1, count + 1):
                            key, secret = bench.keys[i]
                            sender = Sender(key, secret, args.window)
                            stack.enter_context(initiator(sender, port, f"BENCH{i}", directory / f"client{i}"))
                            senders.append((f"s{count}-{i}", sender))
                        print(f"step: {count} session(s), {args.seconds:.0f} s", file=sys.stderr)
                        steps.append(run_step(senders, args.seconds, args.window, pids))
            finally:
                gateway.stop()
                bench.stop()
    finally:
        postgres.stop()
    REPORT.write_text(render(steps, sys.argv[1:] if argv is None else list(argv), args.window))
    print(REPORT.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
