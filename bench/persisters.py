"""``python -m bench.persisters``: how many events a second each persister applies, and how far it falls behind an
engine that runs at 10k orders a second.

Both phases run the real persister processes (``python -m persistence.postgres`` / ``persistence.mongo``) against
real servers started here: Redis, a PostgreSQL cluster, and the MongoDB-protocol server (FerretDB on that
PostgreSQL, or MERCURY_MONGODB_URL). The events come from the benchmark workload (bench.workload: 1,000 funded
accounts, a book of 10,000 orders, the limit/cancel/marketable/amend mix), applied by an in-process engine, and are
appended to the events stream the way the engine's writer does: one entry per batch of commands.

1. Catch-up: the whole stream is written first, then each persister starts alone on an empty database; events/s
   is what it applied divided by the time from its first to its last confirmed offset. CPU seconds of the persister
   and of its database server are measured from /proc over the same interval.
2. Paced: after the funding and the prefill are applied, this process appends the flow at ``--rate`` commands a
   second (one entry every 5 ms, stamped with the wall clock as the sequencer would) while both persisters run.
   Every 10 ms it reads their confirmed offsets (the registry hash) and records the lag: events not yet applied,
   and the age of the oldest entry not yet applied.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis
from matplotlib.figure import Figure

from bench.machine import REPO, machine_markdown
from bench.pipeline.cpu import CLK_TCK, _ticks, _tree_ticks
from bench.workload import FUNDING, FlowGenerator, WorkloadConfig, bench_assets, bench_specs
from persistence.postgres import PostgresStore
from persistence.stream import Chunk
from tests.harness import MongoServer, PostgresServer, RedisServer, Service, wait_for
from wire import keys
from wire.codec import encode
from wire.commands import Command, CreateAccount, Deposit
from wire.events import Event, TradeExecuted
from wire.streams import StreamAppender
from wire.venue import AssetSpec, SymbolSpec, load_venue

REPORT = REPO / "bench" / "reports" / "persisters.md"
PLOT = REPO / "bench" / "reports" / "persisters.png"
PERSISTERS = {"postgres": "persistence.postgres", "mongo": "persistence.mongo"}
ENTRY_COMMANDS = 256  # commands per stream entry in the catch-up stream (the engine's batches under load)
TICK_S = 0.005  # the paced phase appends one entry this often


def venue_toml(shard: str, specs: Sequence[SymbolSpec], assets: Sequence[AssetSpec]) -> str:
    """The benchmark's symbols as a venue file, for the persister processes."""
    lines = ["[venue]", f'shard = "{shard}"', ""]
    for asset in assets:
        lines += ["[[assets]]", f'name = "{asset.name}"', f"decimals = {asset.decimals}", ""]
    for s in specs:
        lines += [
            "[[symbols]]",
            f'symbol = "{s.symbol}"',
            f'base = "{s.base}"',
            f'quote = "{s.quote}"',
            f'tick_size = "{s.tick_size}"',
            f'lot_size = "{s.lot_size}"',
            f'min_qty = "{s.lot_size * s.min_qty}"',
            f'max_qty = "{s.lot_size * s.max_qty}"',
            f'min_notional = "{s.tick_size * s.lot_size * s.min_notional}"',
            f'max_price = "{s.tick_size * s.max_price}"',
            f"price_band_bps = {s.band_bps}",
            f"maker_fee_bps = {s.maker_fee_bps}",
            f"taker_fee_bps = {s.taker_fee_bps}",
            "",
        ]
    return "\n".join(lines)


class Flow:
    """The workload's commands applied by an in-process engine; events handed out per batch of commands."""

    def __init__(self, seed: int) -> None:
        self.config = WorkloadConfig(seed=seed, resting=10_000, accounts=1_000)
        self.gen = FlowGenerator(self.config)
        self.setup = self._setup()

    def _setup(self) -> list[list[Event]]:
        """Accounts, funding and the prefill, in entries of ENTRY_COMMANDS commands."""
        cmds: list[Command] = []
        for account in range(1, self.config.accounts + 1):
            cmds.append(CreateAccount("admin", account, account))
            cmds += [Deposit("admin", account, account, a.name, FUNDING) for a in self.gen.assets]
        entries: list[list[Event]] = []
        for i in range(0, len(cmds), ENTRY_COMMANDS):
            entries.append([ev for cmd in cmds[i : i + ENTRY_COMMANDS] for ev in self.gen.step(cmd)])
        while self.gen.resting() < self.config.resting:
            entries.append([ev for _ in range(ENTRY_COMMANDS) for ev in self.gen.step(self.gen.next_command(True))])
        return entries

    def batch(self, n: int, ts: int = 0) -> list[Event]:
        return [ev for _ in range(n) for ev in self.gen.step(self.gen.next_command(False), ts)]


@dataclass
class Servers:
    directory: Path
    redis: RedisServer
    postgres: PostgresServer
    mongo: MongoServer
    databases: int = 0

    def urls(self) -> tuple[str, str]:
        """A new PostgreSQL database and a new MongoDB database."""
        self.databases += 1
        return self.postgres.create_database(f"bench_{self.databases}"), self.mongo.url(f"bench_{self.databases}")


def persister(servers: Servers, name: str, venue_file: Path, pg_url: str, mongo_url: str, log: str) -> Service:
    env = dict(os.environ)
    env.update(
        {
            "MERCURY_REDIS_URL": servers.redis.url,
            "MERCURY_POSTGRES_URL": pg_url,
            "MERCURY_MONGODB_URL": mongo_url,
            "MERCURY_VENUE_FILE": str(venue_file),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return Service(PERSISTERS[name], env, servers.directory / log, f"{name} persister at out_seq")


def append(r: redis.Redis, appender: StreamAppender, key: str, entries: list[list[Event]]) -> int:
    """Append the entries as the engine's writer does; returns the last out_seq."""
    last = 0
    for i in range(0, len(entries), 64):
        chunk = [(e[0].out_seq, encode(e)) for e in entries[i : i + 64] if e]
        appender.append(key, chunk)
        last = entries[min(i + 64, len(entries)) - 1][-1].out_seq
    return last


def confirmed(r: redis.Redis, shard: str, name: str) -> int:
    value = r.hget(keys.consumers(shard), name)
    return int(value) if value is not None else 0


@dataclass
class CatchUp:
    name: str
    events: int
    seconds: float
    persister_cpu: float  # seconds
    server_cpu: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def server_pids(servers: Servers, name: str) -> list[int]:
    assert servers.postgres.proc is not None
    pids = [servers.postgres.proc.pid]  # the MongoDB-protocol server stores in PostgreSQL: both count for it
    if name == "mongo" and servers.mongo.proc is not None:
        pids.append(servers.mongo.proc.pid)
    return pids


def cpu_seconds(pids: list[int], tree: bool) -> float:
    total = 0
    for pid in pids:
        try:
            total += _tree_ticks(pid) if tree else _ticks(f"/proc/{pid}/stat")
        except FileNotFoundError:
            pass
    return total / CLK_TCK


def catch_up(servers: Servers, r: redis.Redis, flow_entries: list[list[Event]], venue_file: Path, shard: str,
             name: str) -> CatchUp:  # fmt: skip
    pg_url, mongo_url = servers.urls()
    last = flow_entries[-1][-1].out_seq
    r.hdel(keys.consumers(shard), name)
    p = persister(servers, name, venue_file, pg_url, mongo_url, f"catchup-{name}.log")
    p.start()  # returns when the persister says it is ready (connected, schema applied, at out_seq 0)
    assert p.proc is not None
    t0 = time.monotonic()
    servers_before = cpu_seconds(server_pids(servers, name), tree=True)
    cpu0 = cpu_seconds([p.proc.pid], tree=False)
    wait_for(lambda: confirmed(r, shard, name) >= last, 1_800, f"{name} to apply {last} events")
    seconds = time.monotonic() - t0
    result = CatchUp(
        name,
        last,
        seconds,
        cpu_seconds([p.proc.pid], tree=False) - cpu0,
        cpu_seconds(server_pids(servers, name), tree=True) - servers_before,
    )
    p.stop()
    return result


@dataclass
class Paced:
    label: str  # which persisters ran
    rate: float  # commands/s achieved
    events_per_s: float
    seconds: float
    lag_events: dict[str, list[int]] = field(default_factory=dict)
    lag_seconds: dict[str, list[float]] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)
    drained_s: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core over the paced window


def paced(servers: Servers, r: redis.Redis, venue_file: Path, shard: str, rate: float, seconds: float,
          seed: int, names: Sequence[str]) -> Paced:  # fmt: skip
    flow = Flow(seed)
    key = keys.events(shard)
    appender = StreamAppender(r)
    last = append(r, appender, key, flow.setup)
    services = {}
    for name in names:
        pg_url, mongo_url = servers.urls()
        services[name] = persister(servers, name, venue_file, pg_url, mongo_url, f"paced-{name}.log")
        services[name].start()
    for name in names:
        wait_for(lambda n=name: confirmed(r, shard, n) >= last, 600, f"{name} to apply the setup")  # type: ignore[misc]
    per_tick = max(1, round(rate * TICK_S))
    appended: list[tuple[int, float]] = []  # (last out_seq of the entry, when it was appended)
    label = " and ".join(names) + (" together" if len(names) > 1 else " alone")
    result = Paced(label, 0.0, 0.0, seconds, {n: [] for n in names}, {n: [] for n in names})
    pids = {name: s.proc.pid for name, s in services.items() if s.proc is not None}
    assert servers.postgres.proc is not None
    cpu_pids = {**{f"{n} persister": [pid] for n, pid in pids.items()}, "PostgreSQL": [servers.postgres.proc.pid]}
    if servers.mongo.proc is not None and "mongo" in names:
        cpu_pids["FerretDB"] = [servers.mongo.proc.pid]
    cpu_before = {role: cpu_seconds(p, tree=role == "PostgreSQL") for role, p in cpu_pids.items()}
    bench_cpu0 = time.process_time()
    start = time.monotonic()
    next_tick = start
    next_sample = start
    commands = events = 0
    oldest = dict.fromkeys(names, 0)  # index into appended of the first entry not yet applied
    while (now := time.monotonic()) < start + seconds:
        if now >= next_tick:
            batch = flow.batch(per_tick, time.time_ns())
            appender.append(key, [(batch[0].out_seq, encode(batch))])
            appended.append((batch[-1].out_seq, time.monotonic()))
            commands += per_tick
            events += len(batch)
            next_tick += TICK_S
        if now >= next_sample:
            next_sample += 0.01
            result.times.append(now - start)
            for name in names:
                done = confirmed(r, shard, name)
                i = oldest[name]
                while i < len(appended) and appended[i][0] <= done:
                    i += 1
                oldest[name] = i
                result.lag_events[name].append(max(appended[-1][0] - done, 0) if appended else 0)
                result.lag_seconds[name].append(time.monotonic() - appended[i][1] if i < len(appended) else 0.0)
        time.sleep(max(0.0, min(next_tick, next_sample) - time.monotonic()))
    elapsed = time.monotonic() - start
    result.cpu = {
        role: 100 * (cpu_seconds(p, tree=role == "PostgreSQL") - cpu_before[role]) / elapsed
        for role, p in cpu_pids.items()
    }
    result.cpu["bench (the engine stand-in)"] = 100 * (time.process_time() - bench_cpu0) / elapsed
    result.rate, result.events_per_s = commands / elapsed, events / elapsed
    final = appended[-1][0]
    for name in names:
        t = time.monotonic()
        wait_for(lambda n=name: confirmed(r, shard, n) >= final, 600, f"{name} to drain")  # type: ignore[misc]
        result.drained_s[name] = time.monotonic() - t
        services[name].stop()
    appender.close()
    return result


@dataclass
class Breakdown:
    """Where a PostgreSQL persister's time goes, measured in this process on the catch-up stream."""

    batch_commands: int
    batches: int
    events: int
    fold_s: float  # PostgresModel: decoding is not in it (the stream's entries are decoded already)
    statements: dict[str, float]  # seconds waiting on each statement, COMMIT included


async def _breakdown(url: str, venue_file: Path, entries: list[list[Event]], per_batch: int) -> Breakdown:
    store = PostgresStore(url, load_venue(venue_file))
    await store.open()
    timings: defaultdict[str, float] = defaultdict(float)
    store.timings = timings
    fold = 0.0
    batches = events = 0
    try:
        for i in range(0, len(entries), per_batch):
            chunk = Chunk([ev for entry in entries[i : i + per_batch] for ev in entry], [], f"{i + 1}-0")
            started = time.perf_counter()
            batch = store.prepare(chunk)
            fold += time.perf_counter() - started
            await store.commit(batch, chunk.stream_id, chunk.events[-1].out_seq)
            batches += 1
            events += len(chunk.events)
    finally:
        await store.close()
    return Breakdown(per_batch * ENTRY_COMMANDS, batches, events, fold, dict(timings))


def breakdown(servers: Servers, venue_file: Path, entries: list[list[Event]], per_batch: int = 4) -> Breakdown:
    return asyncio.run(_breakdown(servers.urls()[0], venue_file, entries, per_batch))


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def render(catchups: list[CatchUp], runs: list[Paced], total_events: int, trades: int, parts: Breakdown) -> str:
    out = ["# Persisters: events per second and lag behind the engine", ""]
    out += ["Reproduce: `" + " ".join(["python -m bench.persisters", *sys.argv[1:]]) + "`", ""]
    out += [machine_markdown(), ""]
    out += ["## 1. Catch-up: a stream of " + f"{total_events:,} events applied from an empty database", ""]
    out += ["| persister | events | seconds | events/s | persister CPU (% of a core) | server CPU (% of a core) |"]
    out += ["| --- | ---: | ---: | ---: | ---: | ---: |"]
    for c in catchups:
        out.append(
            f"| {c.name} | {c.events:,} | {c.seconds:.1f} | {c.rate:,.0f} | {100 * c.persister_cpu / c.seconds:.0f} | "
            f"{100 * c.server_cpu / c.seconds:.0f} |"
        )
    out += ["", "Server CPU: PostgreSQL (its backends included) for both; FerretDB too for mongo, which stores in"
            " PostgreSQL."]  # fmt: skip
    mongo = next((c for c in catchups if c.name == "mongo"), None)
    if mongo is not None:
        out += ["", f"The stream holds {trades:,} trades: the MongoDB persister stores one tick per trade (and the"
                f" klines they close), {trades / mongo.seconds:,.0f} ticks/s here; every other event only moves its"
                " clock."]  # fmt: skip
    total = parts.fold_s + sum(parts.statements.values())
    out += ["", f"### Where the PostgreSQL persister's time goes ({parts.batches:,} batches of {parts.batch_commands:,}"
            f" commands, {parts.events / parts.batches:,.0f} events each, one after the other in this process)", "",
            "| step | seconds | share | per 1,000 events (ms) |", "| --- | ---: | ---: | ---: |"]  # fmt: skip
    steps = [("fold (persistence/pg_model.py, in the persister)", parts.fold_s)]
    steps += sorted(parts.statements.items(), key=lambda kv: -kv[1])
    for name, seconds in steps:
        out.append(f"| {name} | {seconds:.2f} | {seconds / total:.0%} | {1000 * seconds / parts.events * 1000:.2f} |")
    first = runs[0]
    title = f"## 2. Paced: {first.rate:,.0f} commands/s ({first.events_per_s:,.0f} events/s) for {first.seconds:.0f} s"
    out += ["", title, "", "Lag: events appended and not yet applied, and the age of the oldest such entry, sampled"
            " every 10 ms.", ""]  # fmt: skip
    out += ["| run | persister | lag p50 (events) | p99 | max | lag p50 (s) | p99 | max | drained after (s) |"]
    out += ["| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for run in runs:
        for name in run.lag_events:
            ev, sec = run.lag_events[name], run.lag_seconds[name]
            out.append(
                f"| {run.label} | {name} | {pct(ev, 0.5):,.0f} | {pct(ev, 0.99):,.0f} | {max(ev, default=0):,} | "
                f"{pct(sec, 0.5):.3f} | {pct(sec, 0.99):.3f} | {max(sec, default=0):.3f} | {run.drained_s[name]:.2f} |"
            )
    out += ["", f"CPU over each paced run (% of one core; the machine has {os.cpu_count()} cores):", ""]
    out += ["| run | " + " | ".join(runs[-1].cpu) + " |", "| --- |" + " ---: |" * len(runs[-1].cpu)]
    for run in runs:
        out.append(f"| {run.label} | " + " | ".join(f"{run.cpu.get(role, 0):.0f}" for role in runs[-1].cpu) + " |")
    out += ["", "Kept up (p99 lag under 1 s): " + (", ".join(
        f"{name} ({run.label})" for run in runs for name in run.lag_seconds if pct(run.lag_seconds[name], 0.99) < 1.0
    ) or "none") + ".", ""]  # fmt: skip
    out += [f"![lag]({PLOT.name})", ""]
    return "\n".join(out)


def plot(runs: list[Paced]) -> None:
    fig = Figure(figsize=(9, 4 * len(runs)))
    axes = fig.subplots(len(runs), 1, sharex=True, squeeze=False)
    for ax, run in zip(axes[:, 0], runs, strict=True):
        for name, lags in run.lag_seconds.items():
            ax.plot(run.times, lags, label=f"{name} persister")
        ax.set_ylabel("oldest unapplied entry (s)")
        ax.set_title(f"{run.label}, {run.rate:,.0f} commands/s")
        ax.legend()
    axes[-1, 0].set_xlabel("seconds into the paced run")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=90)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.persisters", description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=100_000, help="mixed commands in the catch-up stream")
    parser.add_argument("--rate", type=float, default=10_000, help="commands/s in the paced phase")
    parser.add_argument("--seconds", type=float, default=30, help="length of the paced phase")
    parser.add_argument("--seed", type=int, default=20_261_124)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mercury-bench-persisters-") as tmp:
        directory = Path(tmp)
        os.chmod(directory, 0o755)
        redis_server = RedisServer(directory / "redis")
        postgres = PostgresServer()
        redis_server.start()
        postgres.start()
        mongo = MongoServer(postgres)
        mongo.start()
        servers = Servers(directory, redis_server, postgres, mongo)
        r = redis_server.client()
        try:
            specs, assets = bench_specs(1), bench_assets(1)
            catch_file, pace_file = directory / "catchup.toml", directory / "paced.toml"
            catch_file.write_text(venue_toml("catchup", specs, assets))
            print("building the catch-up stream ...", flush=True)
            flow = Flow(args.seed)
            entries = list(flow.setup)
            for _ in range(0, args.commands, ENTRY_COMMANDS):
                entries.append(flow.batch(ENTRY_COMMANDS))
            appender = StreamAppender(r)
            total = append(r, appender, keys.events("catchup"), entries)
            appender.close()
            catchups = []
            for name in PERSISTERS:
                print(f"catch-up: {name} ...", flush=True)
                catchups.append(catch_up(servers, r, entries, catch_file, "catchup", name))
                print(f"  {catchups[-1].rate:,.0f} events/s", flush=True)
            print("where a PostgreSQL commit's time goes ...", flush=True)
            parts = breakdown(servers, catch_file, entries)
            r.delete(keys.events("catchup"))
            runs = []
            for i, names in enumerate([["postgres"], ["mongo"], list(PERSISTERS)]):
                shard = f"paced{i}"
                pace_file.write_text(venue_toml(shard, specs, assets))
                print(f"paced: {args.rate:,.0f} commands/s for {args.seconds:.0f} s, {names} ...", flush=True)
                runs.append(paced(servers, r, pace_file, shard, args.rate, args.seconds, args.seed + 1, names))
                r.delete(keys.events(shard))
        finally:
            r.close()
            mongo.stop()
            postgres.stop()
            redis_server.stop()
    trades = sum(1 for entry in entries for ev in entry if type(ev) is TradeExecuted)
    REPORT.write_text(render(catchups, runs, total, trades, parts))
    plot(runs)
    print(f"wrote {REPORT.relative_to(REPO)} and {PLOT.relative_to(REPO)}")
    for run in runs:
        print(
            f"{run.label}: median lag (s) "
            + ", ".join(f"{n} {statistics.median(v):.3f}" for n, v in run.lag_seconds.items())
        )


if __name__ == "__main__":
    main()
