"""``python -m bench.gateway``: orders per second through the HTTP gateway, and the time from request to response.

A real exchange is started here (Redis, sequencer, engine, PostgreSQL with its persister, and one or two gateway
processes on their own ports), with funded accounts and HMAC keys. A client in this process (aiohttp, one event
loop) signs every request as a Binance client does and sends new orders: LIMIT IOC orders below the best ask, so
each is accepted and expires at once (the book stays the same size: every order costs the same). Requests go round
robin to the gateways.

For each gateway count (1, 2) and response mode (ACK: answered once journaled; FULL: answered with the engine's
result) it runs a paced step at ``--rate`` (1k/s by default) and a closed-loop step (``--concurrency`` requests in
flight) that finds the highest rate with no errors. Latency is request to response, in this client. CPU per process
is read from /proc over each step.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import itertools
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import asyncpg
from hdrh.histogram import HdrHistogram

from bench.machine import REPO, machine_markdown
from bench.pipeline.cpu import CLK_TCK, _ticks
from persistence.apikeys import ENV_KEY, SecretCipher, create_hmac
from tests.harness import PostgresServer, Service, Venue, free_port, wait_for
from tests.persistence.test_postgres_persister import persister, wait_caught_up
from wire.enums import Side

REPORT = REPO / "bench" / "reports" / "gateway.md"
ACCOUNTS = 20
UNITS = 10**15  # of every asset per account


@dataclass
class Step:
    gateways: int
    mode: str
    kind: str  # "paced" or "closed loop"
    offered: float  # orders/s asked for (0: closed loop)
    sent: int
    ok: int
    errors: int
    seconds: float
    histogram: HdrHistogram
    cpu: dict[str, float]  # % of one core

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def ms(self, q: float) -> float:
        return float(self.histogram.get_value_at_percentile(q)) / 1000


class Client:
    def __init__(self, urls: list[str], keys: dict[int, tuple[str, str]], mode: str) -> None:
        self.urls = itertools.cycle(urls)
        self.keys = list(keys.items())
        self.mode = mode
        self.n = 0

    def request(self) -> tuple[str, str, dict[str, str]]:
        self.n += 1
        _, (key, secret) = self.keys[self.n % len(self.keys)]
        side = "BUY" if self.n % 2 else "SELL"
        price = "900" if side == "BUY" else "1100"  # never crosses the resting book (995..1005): accepted, expired
        payload = urlencode({"timestamp": time.time_ns() // 1_000_000, "symbol": "BTCUSDT", "side": side,
                             "type": "LIMIT", "timeInForce": "IOC", "quantity": "0.01", "price": price,
                             "newOrderRespType": self.mode, "recvWindow": 60_000})  # fmt: skip
        payload += "&signature=" + hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        return (
            next(self.urls) + "/api/v3/order",
            payload,
            {"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"},
        )


async def _one(session: aiohttp.ClientSession, client: Client, histogram: HdrHistogram, counts: list[int]) -> None:
    url, body, headers = client.request()
    started = time.perf_counter_ns()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            ok = response.status == 200
    except aiohttp.ClientError:
        ok = False
    histogram.record_value(max(1, (time.perf_counter_ns() - started) // 1000))
    counts[0 if ok else 1] += 1


async def paced(urls: list[str], keys: dict[int, tuple[str, str]], mode: str, rate: float,
                seconds: float) -> tuple[int, int, float, HdrHistogram]:  # fmt: skip
    client, histogram, counts = Client(urls, keys, mode), HdrHistogram(1, 60_000_000, 3), [0, 0]
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        sent = 0
        while (elapsed := time.perf_counter() - start) < seconds:
            due = int(elapsed * rate) + 1
            while sent < due:
                task = asyncio.create_task(_one(session, client, histogram, counts))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(0.001)
        if tasks:
            await asyncio.wait(tasks, timeout=30)
        return counts[0], counts[1], time.perf_counter() - start, histogram


async def closed_loop(urls: list[str], keys: dict[int, tuple[str, str]], mode: str, concurrency: int,
                      seconds: float) -> tuple[int, int, float, HdrHistogram]:  # fmt: skip
    client, histogram, counts = Client(urls, keys, mode), HdrHistogram(1, 60_000_000, 3), [0, 0]
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()

        async def worker() -> None:
            while time.perf_counter() - start < seconds:
                await _one(session, client, histogram, counts)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return counts[0], counts[1], time.perf_counter() - start, histogram


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for role, pid in pids.items():
        try:
            out[role] = _ticks(f"/proc/{pid}/stat") / CLK_TCK
        except FileNotFoundError:
            out[role] = 0.0
    out["bench client"] = time.process_time()
    return out


class Bench:
    def __init__(self, directory: Path, postgres: PostgresServer) -> None:
        self.venue = Venue(directory, busy_lag="1000000")
        self.postgres = postgres
        self.gateways: list[Service] = []
        self.urls: list[str] = []
        self.keys: dict[int, tuple[str, str]] = {}
        self.kek = ""  # the key-encryption key the gateways were given
        self.pg_url = ""

    def start(self, gateways: int) -> None:
        venue = self.venue
        venue.start()
        pg_url = self.postgres.create_database(f"bench_gateway_{gateways}")
        venue.fund(*range(1, ACCOUNTS + 1), units=UNITS)
        self.pg = persister(venue, pg_url)
        self.pg.start()
        wait_caught_up(venue, pg_url)
        kek = self.kek = base64.b64encode(os.urandom(32)).decode()
        self.pg_url = pg_url
        cipher = SecretCipher(base64.b64decode(kek))

        async def make_keys() -> dict[int, tuple[str, str]]:
            conn = await asyncpg.connect(pg_url)
            try:
                return {a: await create_hmac(conn, cipher, a) for a in range(1, ACCOUNTS + 1)}
            finally:
                await conn.close()

        self.keys = asyncio.run(make_keys())
        c = venue.client("book")  # a resting book round 1000 that the benchmark's orders never reach
        for i in range(5):
            c.submit(c.place(1, "BTCUSDT", Side.SELL, 1000, price=100_000 + 100 * (i + 1)))
            c.submit(c.place(2, "BTCUSDT", Side.BUY, 1000, price=100_000 - 100 * (i + 1)))
        for i in range(gateways):
            port = free_port()
            env = dict(venue.env, MERCURY_POSTGRES_URL=pg_url, MERCURY_HTTP_PORT=str(port), **{ENV_KEY: kek},
                       MERCURY_WEIGHT_PER_MINUTE="100000000", MERCURY_ORDERS_PER_10S="100000000",
                       MERCURY_ORDERS_PER_DAY="1000000000")  # fmt: skip
            service = Service("gateways.http", env, venue.dir / f"gateway{i}.log", "gateway ready")
            service.start()
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda u=url: _up(u), 20, "the gateway")  # type: ignore[misc]
            self.gateways.append(service)
            self.urls.append(url)

    def pids(self) -> dict[str, int]:
        pids = {f"gateway {i + 1}": g.proc.pid for i, g in enumerate(self.gateways) if g.proc is not None}
        for role, service in (("sequencer", self.venue.sequencer), ("engine", self.venue.engine)):
            if service.proc is not None:
                pids[role] = service.proc.pid
        return pids

    def stop(self) -> None:
        for g in self.gateways:
            g.stop()
        self.pg.stop()
        self.venue.stop()


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/api/v3/ping", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def measure(bench: Bench, gateways: int, mode: str, kind: str, offered: float, seconds: float,
            concurrency: int) -> Step:  # fmt: skip
    before = cpu_of(bench.pids())
    if kind == "paced":
        ok, errors, elapsed, histogram = asyncio.run(paced(bench.urls, bench.keys, mode, offered, seconds))
    else:
        ok, errors, elapsed, histogram = asyncio.run(closed_loop(bench.urls, bench.keys, mode, concurrency, seconds))
    after = cpu_of(bench.pids())
    cpu = {role: 100 * (after[role] - before.get(role, 0.0)) / elapsed for role in after}
    return Step(gateways, mode, kind, offered, ok + errors, ok, errors, elapsed, histogram, cpu)


def render(steps: list[Step], argv: Sequence[str], warnings: list[str]) -> str:
    out = ["# HTTP gateway: orders per second and request-to-response latency", ""]
    out += ["Reproduce: `" + " ".join(["python -m bench.gateway", *argv]) + "`", "", machine_markdown(), ""]
    out += ["New LIMIT IOC orders that never cross (accepted, then expired), signed with HMAC as a Binance client does,"
            " sent by one aiohttp client in this process to the gateways round robin. ACK answers once the order is"
            " journaled; FULL waits for the engine's result.", ""]  # fmt: skip
    out += ["| gateways | mode | step | orders/s | errors | p50 ms | p99 ms | p99.9 ms | CPU % per process |"]
    out += ["| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for s in steps:
        what = f"paced {s.offered:,.0f}/s" if s.kind == "paced" else "closed loop"
        cpu = ", ".join(f"{role} {value:.0f}" for role, value in s.cpu.items())
        out.append(f"| {s.gateways} | {s.mode} | {what} | {s.rate:,.0f} | {s.errors} | {s.ms(50):.2f} | "
                   f"{s.ms(99):.2f} | {s.ms(99.9):.2f} | {cpu} |")  # fmt: skip
    best = {g: max((s.rate for s in steps if s.gateways == g and s.errors == 0), default=0.0) for g in (1, 2)}
    out += ["", f"Highest rate with no errors in this run: one gateway {best[1]:,.0f} orders/s, two {best[2]:,.0f}"
            f" ({best[2] / best[1]:.2f}x of one); the seed's bar is 10,000." if best[1] else "", ""]  # fmt: skip
    out += ["Warnings and errors the gateways logged during the run: " + (str(len(warnings)) if warnings else "none.")]
    out += [f"    {line}" for line in warnings[:20]]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1_000, help="orders/s of the paced steps")
    parser.add_argument("--seconds", type=float, default=10, help="length of each step")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight in the closed-loop steps")
    args = parser.parse_args(argv)
    steps: list[Step] = []
    warnings: list[str] = []
    postgres = PostgresServer()
    postgres.start()
    try:
        for gateways in (1, 2):
            with tempfile.TemporaryDirectory(prefix="mercury-bench-gateway-") as tmp:
                os.chmod(tmp, 0o755)
                bench = Bench(Path(tmp), postgres)
                try:
                    bench.start(gateways)
                    for mode in ("ACK", "FULL"):
                        for kind in ("paced", "closed loop"):
                            print(f"{gateways} gateway(s), {mode}, {kind} ...", flush=True)
                            step = measure(bench, gateways, mode, kind, args.rate, args.seconds, args.concurrency)
                            print(f"  {step.rate:,.0f} orders/s, {step.errors} errors, p99 {step.ms(99):.2f} ms",
                                  flush=True)  # fmt: skip
                            steps.append(step)
                finally:
                    warnings += [line for g in bench.gateways for line in g.log().splitlines()
                                 if " WARNING " in line or " ERROR " in line]  # fmt: skip
                    bench.stop()
    finally:
        postgres.stop()
    REPORT.write_text(render(steps, sys.argv[1:] if argv is None else argv, warnings))
    print(f"wrote {REPORT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
