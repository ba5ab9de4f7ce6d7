"""Engine-core benchmark: the matching engine alone, on one pinned core, fed a realistic deterministic mix.

Run ``python -m bench.engine_core`` (about a minute; ``--help`` for the knobs). It writes
``bench/reports/engine-core.md`` and ``bench/reports/engine-core.png``; every figure in them comes from this run.

What is measured, for 1 symbol and for 10 symbols (see bench/workload.py for the mix and the book):

- **decode only**: ``wire.codec.decode_batch`` over the pre-encoded journal batches, nothing else;
- **apply only**: ``Engine.apply_many`` over the same batches decoded beforehand (untimed);
- **decode + apply**: decode each batch, then apply it with one ``Engine.apply_many`` call: what the engine
  process does per batch;
- **decode + apply + encode**: the same, plus ``wire.codec.encode`` of each batch's events as one frame, which
  the engine process also does before publishing;
- **decode + apply, matching only**: decode + apply on an engine with risk off (no locks, settlement, fees or
  balance events) restored from the same books, over the same batches: the baseline for the cost of risk.

Every apply pass but the last runs with accounts and risk on (1 000 funded accounts by default), as the engine
process does. The engine's hot modules run as installed: compiled with mypyc (setup.py) unless
``MERCURY_PURE_PYTHON`` removed the compiled modules; the report says which. The five passes run in the same
process, one after the other, in an order that rotates every repetition, each apply pass on a fresh engine
restored (untimed) from the snapshot taken right before the measured window. After every apply pass the
engine's event count and state hash are checked against the generator's, so a pass that did not do the full
work cannot produce a figure. The garbage collector stays on, as in the engine process. A cProfile pass and a
per-command-kind timing pass follow; their overhead never touches the figures above.
"""

from __future__ import annotations

import argparse
import ast
import cProfile
import dataclasses
import gc
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import CodeType

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.machine import REPO, engine_build, machine_markdown
from bench.workload import Workload, WorkloadConfig, build, fresh_engine
from engine import matching as matching_module
from engine.core import Engine
from wire.codec import JournalBatch, decode_batch, encode
from wire.commands import Command, PlaceOrder, ReplaceOrder
from wire.events import Event

DECODE, APPLY, DECODE_APPLY, DECODE_APPLY_ENCODE, MATCHING = (
    "decode only",
    "apply only",
    "decode + apply",
    "decode + apply + encode",
    "decode + apply, matching only",
)
MODES = (DECODE, APPLY, DECODE_APPLY, DECODE_APPLY_ENCODE, MATCHING)
TARGET = 250_000  # commands/s, decode + apply with accounts and risk on, in CPython (the accounts issue)
REPORT_DIR = Path(__file__).resolve().parent / "reports"
COMPILED = str(matching_module.__file__).endswith(".so")  # the engine's hot modules run compiled (setup.py)
COMMAND = "python -m bench.engine_core"


# ---- timed passes ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pass:
    seconds: float
    events: int
    out_bytes: int  # encoded event frames (decode + apply + encode only)


def _decode_only(batches: Sequence[bytes]) -> Pass:
    decode = decode_batch
    t0 = time.perf_counter()
    for raw in batches:
        decode(raw)
    return Pass(time.perf_counter() - t0, 0, 0)


# The engine process applies a journal batch with one Engine.apply_many call (engine/service.py): so do these.


def _decode_apply(engine: Engine, batches: Sequence[bytes]) -> Pass:
    apply_many, decode = engine.apply_many, decode_batch
    n_events = 0
    t0 = time.perf_counter()
    for raw in batches:
        batch = decode(raw)
        n_events += len(apply_many(batch.first_in_seq, batch.stamps, batch.cmds))
    return Pass(time.perf_counter() - t0, n_events, 0)


def _apply_only(engine: Engine, decoded: Sequence[JournalBatch]) -> Pass:
    apply_many = engine.apply_many
    n_events = 0
    t0 = time.perf_counter()
    for batch in decoded:
        n_events += len(apply_many(batch.first_in_seq, batch.stamps, batch.cmds))
    return Pass(time.perf_counter() - t0, n_events, 0)


def _decode_apply_encode(engine: Engine, batches: Sequence[bytes]) -> Pass:
    apply_many, decode, enc = engine.apply_many, decode_batch, encode
    n_events = n_bytes = 0
    t0 = time.perf_counter()
    for raw in batches:
        batch = decode(raw)
        out: list[Event] = apply_many(batch.first_in_seq, batch.stamps, batch.cmds)
        n_bytes += len(enc(out))
        n_events += len(out)
    return Pass(time.perf_counter() - t0, n_events, n_bytes)


def _check(engine: Engine, workload: Workload, result: Pass) -> None:
    events, final = (
        (workload.n_events, workload.final_hash) if engine.risk else (workload.plain_events, workload.plain_hash)
    )
    if result.events != events or engine.state_hash() != final:
        raise RuntimeError(
            f"the engine diverged from the generator: {result.events} events (expected {events}), "
            "or a different final state: the figures would not measure the intended work"
        )


def _run(mode: str, workload: Workload, decoded: Sequence[JournalBatch]) -> Pass:
    if mode == DECODE:
        gc.collect()
        return _decode_only(workload.batches)
    engine = fresh_engine(workload, risk=mode != MATCHING)
    gc.collect()
    if mode == APPLY:
        result = _apply_only(engine, decoded)
    elif mode in (DECODE_APPLY, MATCHING):
        result = _decode_apply(engine, workload.batches)
    else:
        result = _decode_apply_encode(engine, workload.batches)
    _check(engine, workload, result)
    return result


# ---- statistics --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rates:
    median: float
    low: float
    high: float

    @property
    def spread(self) -> float:
        """(max - min) / median."""
        return (self.high - self.low) / self.median

    @classmethod
    def of(cls, values: Sequence[float]) -> Rates:
        return cls(statistics.median(values), min(values), max(values))


@dataclass(frozen=True, slots=True)
class ProfileRow:
    name: str
    calls: int
    own: float  # seconds in the function itself
    cum: float  # seconds including callees


@dataclass(frozen=True, slots=True)
class Profile:
    total: float  # sum of own times (the profiled run's length)
    rows: list[ProfileRow]  # by own time, descending
    by_file: list[tuple[str, float]]  # own time grouped by source file (C functions apart), descending


@dataclass(frozen=True, slots=True)
class KindCost:
    kind: str
    count: int
    ns: float  # mean apply time per command, timer overhead subtracted
    events: float  # mean events per command


@dataclass(frozen=True, slots=True)
class GcCost:
    collections: int
    seconds: float
    run_seconds: float


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    workload: Workload
    build_seconds: float
    passes: dict[str, list[Pass]]  # mode -> one Pass per repetition
    profile: Profile
    kinds: list[KindCost]
    gc: GcCost

    def rates(self, mode: str) -> Rates:
        n = self.workload.n_commands
        return Rates.of([n / p.seconds for p in self.passes[mode]])

    def event_rates(self, mode: str) -> Rates:
        return Rates.of([p.events / p.seconds for p in self.passes[mode]])

    def ratio(self) -> Rates:
        """decode+apply rate / decode-only rate, paired within each repetition (measured seconds apart)."""
        pairs = zip(self.passes[DECODE], self.passes[DECODE_APPLY], strict=True)
        return Rates.of([d.seconds / da.seconds for d, da in pairs])

    def risk_ratio(self) -> Rates:
        """decode+apply rate with risk / without (matching only), paired within each repetition."""
        pairs = zip(self.passes[MATCHING], self.passes[DECODE_APPLY], strict=True)
        return Rates.of([m.seconds / da.seconds for m, da in pairs])

    def decode_share(self) -> float:
        """Decoding's share of decode + apply time: median over repetitions of the paired passes."""
        pairs = zip(self.passes[DECODE], self.passes[DECODE_APPLY], strict=True)
        return statistics.median(d.seconds / da.seconds for d, da in pairs)

    def encode_share(self) -> float:
        """Encoding's share of decode + apply + encode time: median over repetitions of the paired passes."""
        pairs = zip(self.passes[DECODE_APPLY], self.passes[DECODE_APPLY_ENCODE], strict=True)
        return statistics.median((dae.seconds - da.seconds) / dae.seconds for da, dae in pairs)


# ---- profile and breakdowns (untimed figures) --------------------------------------------------------------


def _label(code: CodeType | str) -> tuple[str, str]:
    """(display name, file group) of a profiler entry."""
    if isinstance(code, str):  # a C function: "<method 'decode' of 'msgspec.msgpack.Decoder' objects>" etc.
        return code.strip("<>").replace("'", ""), "C functions (msgspec, dict, list, ...)"
    path = Path(code.co_filename)
    try:
        rel = str(path.resolve().relative_to(REPO))
    except ValueError:
        rel = path.name
    return f"{rel}:{code.co_firstlineno} {code.co_qualname}", rel


def _profile(workload: Workload) -> Profile:
    engine = fresh_engine(workload)
    gc.collect()
    profiler = cProfile.Profile()
    profiler.enable()
    result = _decode_apply(engine, workload.batches)
    profiler.disable()
    _check(engine, workload, result)
    rows: dict[str, ProfileRow] = {}
    by_file: dict[str, float] = defaultdict(float)
    for entry in profiler.getstats():
        name, group = _label(entry.code)
        if name.startswith("method disable of"):
            continue
        old = rows.get(name)
        calls, own, cum = entry.callcount, entry.inlinetime, entry.totaltime
        if old is not None:
            calls, own, cum = calls + old.calls, own + old.own, max(cum, old.cum)
        rows[name] = ProfileRow(name, calls, own, cum)
        by_file[group] += entry.inlinetime
    ordered = sorted(rows.values(), key=lambda r: r.own, reverse=True)
    return Profile(sum(r.own for r in ordered), ordered, sorted(by_file.items(), key=lambda kv: kv[1], reverse=True))


def _kind(cmd: Command) -> str:
    if isinstance(cmd, PlaceOrder):
        return f"PlaceOrder {cmd.type.name} {cmd.tif.name}"
    if isinstance(cmd, ReplaceOrder):
        return "ReplaceOrder"
    return type(cmd).__name__


def _kind_costs(workload: Workload, decoded: Sequence[JournalBatch]) -> list[KindCost]:
    """Apply time per command kind: perf_counter_ns around each apply, its own cost measured and subtracted."""
    clock = time.perf_counter_ns
    t0 = clock()
    for _ in range(100_000):
        clock()
    overhead = (clock() - t0) / 100_000
    engine = fresh_engine(workload)
    apply = engine.apply
    spent: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    events: dict[str, int] = defaultdict(int)
    gc.collect()
    for batch in decoded:
        seq = batch.first_in_seq
        for ts, cmd in zip(batch.stamps, batch.cmds, strict=True):
            kind = _kind(cmd)
            t = clock()
            out = apply(seq, ts, cmd)
            spent[kind] += clock() - t
            count[kind] += 1
            events[kind] += len(out)
            seq += 1
    return [KindCost(k, count[k], spent[k] / count[k] - overhead, events[k] / count[k]) for k in sorted(count)]


def _gc_cost(workload: Workload) -> GcCost:
    state = {"start": 0.0, "spent": 0.0, "n": 0.0}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            state["start"] = time.perf_counter()
        else:
            state["spent"] += time.perf_counter() - state["start"]
            state["n"] += 1

    engine = fresh_engine(workload)
    gc.collect()
    gc.callbacks.append(on_gc)
    try:
        result = _decode_apply(engine, workload.batches)
    finally:
        gc.callbacks.remove(on_gc)
    return GcCost(int(state["n"]), state["spent"], result.seconds)


# ---- the run -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load:
    """What else ran on the machine meanwhile: the machine's busy CPU time minus this process's own."""

    loadavg_start: float
    loadavg_end: float
    others: float  # other processes' CPU time, as a share of all cores over the run


def _busy_jiffies() -> int | None:
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal: guest is already in user


def _own_cpu() -> float:
    """CPU seconds of this process and its finished children (the scenarios run in child processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class LoadMeter:
    def __init__(self) -> None:
        self.load = os.getloadavg()[0]
        self.busy = _busy_jiffies()
        self.own = _own_cpu()
        self.wall = time.perf_counter()

    def stop(self) -> Load:
        busy, tick = _busy_jiffies(), os.sysconf("SC_CLK_TCK")
        wall = time.perf_counter() - self.wall
        others = 0.0
        if busy is not None and self.busy is not None and wall > 0:
            machine = (busy - self.busy) / tick
            others = max(0.0, machine - (_own_cpu() - self.own)) / (wall * (os.cpu_count() or 1))
        return Load(self.load, os.getloadavg()[0], others)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_scenario(name: str, config: WorkloadConfig, reps: int) -> Scenario:
    t0 = time.perf_counter()
    workload = build(config)
    built = time.perf_counter() - t0
    _log(f"[{name}] workload built in {built:.1f} s: {workload.n_commands} commands, {workload.n_events} events")
    decoded = [decode_batch(raw) for raw in workload.batches]
    passes: dict[str, list[Pass]] = {mode: [] for mode in MODES}
    for rep in range(reps):
        order = MODES[rep % len(MODES) :] + MODES[: rep % len(MODES)]
        for mode in order:
            passes[mode].append(_run(mode, workload, decoded))
        line = ", ".join(f"{m} {workload.n_commands / passes[m][-1].seconds / 1000:,.0f}k/s" for m in MODES)
        _log(f"[{name}] repetition {rep + 1}/{reps}: {line}")
    _log(f"[{name}] profiling")
    profile = _profile(workload)
    kinds = _kind_costs(workload, decoded)
    gc_cost = _gc_cost(workload)
    return Scenario(name, workload, built, passes, profile, kinds, gc_cost)


def _in_own_process(name: str, config: WorkloadConfig, reps: int, cpu: int | None) -> Scenario:
    """run_scenario in a fresh interpreter (``python -m bench.engine_core --one-scenario``, pinned to the same
    core): a scenario run after another in the same process inherits its heap, which measurably slowed the
    second scenario (10 symbols after 1: about 25%)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scenario.pickle"
        argv = [sys.executable, "-m", "bench.engine_core", "--one-scenario", str(out), "--name", name,
                "--config", repr(dataclasses.astuple(config)), "--reps", str(reps)]  # fmt: skip
        if cpu is not None:
            argv += ["--cpu", str(cpu)]
        subprocess.run(argv, check=True, cwd=REPO)
        with out.open("rb") as f:
            scenario: Scenario = pickle.load(f)
    return scenario


def _one_scenario(path: Path, name: str, config_text: str, reps: int, cpu: int | None) -> int:
    """The child side of _in_own_process."""
    pin(cpu)
    symbols, seed, resting, warmup, measured, batch, accounts, _mix = ast.literal_eval(config_text)
    config = WorkloadConfig(symbols, seed, resting, warmup, measured, batch, accounts)
    scenario = run_scenario(name, config, reps)
    with path.open("wb") as f:
        pickle.dump(scenario, f)
    return 0


def pin(cpu: int | None) -> int | None:
    """Pin this process to one core (the highest usable one unless told): the engine runs pinned too."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    usable = sorted(os.sched_getaffinity(0))
    chosen = usable[-1] if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    return chosen


# ---- the report --------------------------------------------------------------------------------------------


def _k(rate: float) -> str:
    return f"{rate / 1000:,.0f}k"


def _mix_line(w: Workload) -> str:
    total = w.n_commands
    kinds = w.kinds
    limit = kinds.get("limit", 0)
    cancel = kinds.get("cancel", 0)
    market, ioc = kinds.get("market", 0), kinds.get("limit_ioc", 0)
    reduce_, move = kinds.get("amend_reduce", 0), kinds.get("amend_move", 0)
    return (
        f"{limit / total:.1%} limit GTC near the touch, {cancel / total:.1%} cancels, "
        f"{(market + ioc) / total:.1%} marketable ({market / total:.1%} MARKET, {ioc / total:.1%} crossing LIMIT IOC), "
        f"{(reduce_ + move) / total:.1%} amends ({reduce_ / total:.1%} quantity down keeping priority, "
        f"{move / total:.1%} price moves)"
    )


def render(
    scenarios: Sequence[Scenario],
    reps: int,
    machine: str,
    cpu: int | None,
    load: Load,
    args_line: str,
    elapsed: float,
) -> str:
    cfg = scenarios[0].workload.config
    out: list[str] = []
    add = out.append
    add("# Engine core benchmark\n")
    add(
        f"Written by `{COMMAND}{args_line}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {elapsed:.0f} s. "
        "Every figure below is inserted by that script from that run: do not edit by hand, run it again.\n"
    )
    add("## Result\n")
    for s in scenarios:
        da = s.rates(DECODE_APPLY)
        verdict = "meets" if da.median >= TARGET else "is below"
        ratio, risk = s.ratio(), s.risk_ratio()
        add(
            f"- **{s.name}**: decode + apply with accounts and risk on **{_k(da.median)} commands/s** (median of "
            f"{reps}; {_k(da.low)} to {_k(da.high)}), which {verdict} the {_k(TARGET)} commands/s target; "
            f"{s.event_rates(DECODE_APPLY).median / 1000:,.0f}k events/s. Risk on / matching only: "
            f"**{risk.median:.3f}** (matching only: {_k(s.rates(MATCHING).median)} commands/s; risk costs "
            f"{1 / risk.median - 1:.0%} more time per command). Engine / decode-only ratio "
            f"**{ratio.median:.3f}** (decoding alone is {1 / ratio.median:.1f}x faster)."
        )
    add("")
    add(
        f"Engine build: {engine_build()}. The same sources run as Python with `MERCURY_PURE_PYTHON=1 ./mercury "
        "build`; compiling is what lets the engine clear the target with accounts and risk on (setup.py).\n"
    )
    add("## Machine and code\n")
    add(machine)
    add(
        f"The process was pinned to CPU {cpu} with `os.sched_setaffinity` (the engine process pins itself too). "
        "This is a shared virtual machine: other tenants' load moves absolute figures by 10-20% between runs "
        "and even within one, so compare figures from the same run (the ratio below) rather than across runs. "
        f"During this run, other processes on this machine used {load.others:.0%} of its cores (load average "
        f"{load.loadavg_start:.2f} at the start, {load.loadavg_end:.2f} at the end).\n"
    )
    add("## Reproduce\n")
    add("```sh")
    add(f"{COMMAND}{args_line}")
    add("```\n")
    add(
        "`--help` lists the knobs (commands measured, repetitions, batch size, resting orders, accounts, seed, "
        "CPU). The same arguments always generate the same commands, byte for byte.\n"
    )
    add("## Workload\n")
    add(
        f"Generated by `bench/workload.py` with `random.Random({cfg.seed})`: a shadow engine is driven while the "
        "commands are written, so every cancel and amend names an order resting at that moment and every limit "
        f"price is taken from the current touch. Prefill: passive orders until {cfg.resting:,} rest in the engine "
        f"(split evenly between the symbols), then {cfg.warmup:,} mixed commands, then the measured window of "
        f"{cfg.measured:,} commands in journal batches of {cfg.batch} (`wire.codec.JournalBatch`, encoded once "
        f"beforehand). {cfg.accounts:,} accounts, created and funded before the prefill with far more of every "
        "asset than their orders lock, picked at random, so self-trade prevention almost never fires and risk "
        "refuses nothing; fees are 10 bps each side. "
        "Symbols are `SymbolSpec` objects made in code (BTCUSDT, then ETHUSDT, SOLUSDT, ... for 10), each with "
        "a 20% price band; commands are spread evenly over the symbols.\n"
    )
    add("| | " + " | ".join(s.name for s in scenarios) + " |")
    add("| --- | " + " | ".join("---" for _ in scenarios) + " |")
    rows: list[tuple[str, Callable[[Scenario], str]]] = [
        ("measured commands", lambda s: f"{s.workload.n_commands:,}"),
        ("mix (realised)", lambda s: _mix_line(s.workload)),
        (
            "resting orders: start / min / max / end",
            lambda s: (
                f"{s.workload.resting_start:,} / {s.workload.resting_min:,} / "
                f"{s.workload.resting_max:,} / {s.workload.resting_end:,}"
            ),
        ),
        ("events per command", lambda s: f"{s.workload.n_events / s.workload.n_commands:.2f}"),
        ("trades per command", lambda s: f"{s.workload.trades / s.workload.n_commands:.3f}"),
        ("rejected commands", lambda s: f"{s.workload.rejects}"),
        (
            "journal bytes per command",
            lambda s: f"{sum(len(b) for b in s.workload.batches) / s.workload.n_commands:.1f}",
        ),
        (
            "event bytes per event (encoded)",
            lambda s: f"{s.passes[DECODE_APPLY_ENCODE][0].out_bytes / s.workload.n_events:.1f}",
        ),
        ("time to generate", lambda s: f"{s.build_seconds:.1f} s"),
    ]
    for label, cell in rows:
        add(f"| {label} | " + " | ".join(cell(s) for s in scenarios) + " |")
    add("")
    add("## Figures\n")
    add(
        f"Commands per second over the measured window, {reps} repetitions per row; spread = (max - min) / median. "
        "Events/s counts the events the engine emitted in the same passes.\n"
    )
    add("| scenario | pass | commands/s (median) | min | max | spread | ns per command | events/s (median) |")
    add("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in scenarios:
        for mode in MODES:
            r = s.rates(mode)
            ev = f"{s.event_rates(mode).median:,.0f}" if mode != DECODE else "-"
            add(
                f"| {s.name} | {mode} | {r.median:,.0f} | {r.low:,.0f} | {r.high:,.0f} | {r.spread:.1%} | "
                f"{1e9 / r.median:,.0f} | {ev} |"
            )
    add("")
    add("![throughput per scenario and pass](engine-core.png)\n")
    add("## Engine / decode-only ratio\n")
    add(
        "ratio = decode + apply rate / decode-only rate (= decode-only seconds / decode + apply seconds, which is "
        "also decoding's share of the engine's time). Each repetition runs both loops over the same batches "
        "seconds apart, so the ratio, taken per repetition, cancels most of the machine's drift. The encode "
        "share is paired the same way: (decode + apply + encode - decode + apply) / decode + apply + encode.\n"
    )
    add("| scenario | ratio (median) | min | max | decode only is ... faster | encode's share of the encoding pass |")
    add("| --- | ---: | ---: | ---: | ---: | ---: |")
    for s in scenarios:
        r = s.ratio()
        add(
            f"| {s.name} | {r.median:.3f} | {r.low:.3f} | {r.high:.3f} | {1 / r.median:.1f}x | {s.encode_share():.1%} |"
        )
    add("")
    add("## Cost of risk\n")
    add(
        "ratio = decode + apply rate with risk on / the same pass on a matching-only engine (risk off), from "
        "the same books and the same batches, paired within each repetition. The matching work is identical "
        "(every account is funded far beyond its orders, so risk refuses nothing: see the rejected commands "
        "above); the difference is the locks, the settlement of every fill with its fees, and the "
        "BalanceChanged events.\n"
    )
    add("| scenario | ratio (median) | min | max | events per command, risk on / off |")
    add("| --- | ---: | ---: | ---: | ---: |")
    for s in scenarios:
        r = s.risk_ratio()
        w = s.workload
        add(
            f"| {s.name} | {r.median:.3f} | {r.low:.3f} | {r.high:.3f} | "
            f"{w.n_events / w.n_commands:.2f} / {w.plain_events / w.n_commands:.2f} |"
        )
    add("")
    add("## Where the time goes\n")
    for s in scenarios:
        add(f"### {s.name}\n")
        add(_findings(s))
        p = s.profile
        if COMPILED:
            add(
                "No cProfile table: the engine's modules ran compiled (mypyc), and a profiler sees a compiled "
                "module's work only as the one call Python made into it (`apply_many`). For a function-level "
                "profile, run the sources as Python: `MERCURY_PURE_PYTHON=1 ./mercury build`, then this "
                "benchmark (and `./mercury build` again to compile).\n"
            )
        else:
            _profile_tables(p, s, add)
        add(
            "Apply time by command kind (one more pass, `perf_counter_ns` around each `Engine.apply`, the "
            "clock's own cost subtracted):\n"
        )
        add("| command | count | ns per command | events per command |")
        add("| --- | ---: | ---: | ---: |")
        for k in s.kinds:
            add(f"| {k.kind} | {k.count:,} | {k.ns:,.0f} | {k.events:.2f} |")
        add("")
    return "\n".join(out).rstrip() + "\n"


def _profile_tables(p: Profile, s: Scenario, add: Callable[[str], None]) -> None:
    """The cProfile tables (only meaningful when the engine runs as Python sources)."""
    add(
        f"cProfile of one decode + apply pass ({p.total:.2f} s profiled, against "
        f"{statistics.median(x.seconds for x in s.passes[DECODE_APPLY]):.2f} s unprofiled: the profiler "
        "charges every Python call, so small functions look heavier than they are). Top functions by own "
        "time:\n"
    )
    add("| function | calls | own time | % of total | cumulative |")
    add("| --- | ---: | ---: | ---: | ---: |")
    for row in p.rows[:15]:
        add(f"| `{row.name}` | {row.calls:,} | {row.own:.3f} s | {row.own / p.total:.1%} | {row.cum:.3f} s |")
    add("")
    add("Own time by file:\n")
    add("| file | % of total |")
    add("| --- | ---: |")
    for group, own in p.by_file:
        if own / p.total >= 0.0005:
            add(f"| {group} | {own / p.total:.1%} |")
    add("")


def _findings(s: Scenario) -> str:
    """The profile's story in sentences, every number taken from this run."""
    p = s.profile
    engine_files = [(g, t) for g, t in p.by_file if g.startswith("engine/")]
    engine_share = sum(t for _, t in engine_files) / p.total
    top = p.rows[:3]
    heaviest = max(s.kinds, key=lambda k: k.ns)
    lightest = min(s.kinds, key=lambda k: k.ns)
    gc_share = s.gc.seconds / s.gc.run_seconds
    top_text = ", ".join(f"`{r.name.split(' ', 1)[-1]}` ({r.own / p.total:.1%})" for r in top)
    profile_text = (
        "- The engine ran compiled: per command, the cost is the work itself (validation, the order and its "
        "indexes, the lock and the settlement, one event struct per event) rather than any one algorithm, and "
        "nothing in the path depends on the number of resting orders. The cost of risk is its share of the "
        "events (see above) and the balance arithmetic of every order and fill.\n"
        if COMPILED
        else f"- In the profile, {engine_share:.1%} of the time is spent in engine/ code itself and the rest in C "
        f"functions (decode, dict and list methods) and the benchmark loop. No single function dominates: the "
        f"top three are {top_text}. "
        "The cost is the number of Python-level steps per command (validation, the order and its indexes, one "
        "event struct per order event, trade and book level) rather than any one algorithm: nothing in the "
        "path depends on the number of resting orders.\n"
    )
    return (
        f"- Unprofiled: decoding is {s.decode_share():.1%} of decode + apply, so {1 - s.decode_share():.1%} is "
        "applying (`Engine.apply_many`); encoding each batch's events takes "
        f"{s.encode_share():.1%} of the pass that also encodes.\n"
        f"{profile_text}"
        f"- By kind, {heaviest.kind} is the most expensive ({heaviest.ns:,.0f} ns, {heaviest.events:.1f} "
        f"events each) and {lightest.kind} the cheapest ({lightest.ns:,.0f} ns).\n"
        f"- The garbage collector ran {s.gc.collections} time(s) during a decode + apply pass, for "
        f"{gc_share:.2%} of it: events and commands are `gc=False` structs, so only orders are tracked.\n"
    )


def plot(scenarios: Sequence[Scenario], path: Path) -> None:
    """Three panels: the engine passes against the target, decode only (its own scale), decode + apply per rep."""
    fig = Figure(figsize=(14, 5.2))
    FigureCanvasAgg(fig)  # the Agg backend, without pyplot's global state
    engine_ax, decode_ax, reps_ax = fig.subplots(1, 3, gridspec_kw={"width_ratios": [3, 1.4, 2]})
    colors = {
        APPLY: "#4c72b0",
        DECODE_APPLY: "#dd8452",
        DECODE_APPLY_ENCODE: "#55a868",
        MATCHING: "#8172b3",
        DECODE: "#9e9e9e",
    }
    engine_modes = (APPLY, DECODE_APPLY, DECODE_APPLY_ENCODE, MATCHING)
    width = 0.2
    for ax, modes in ((engine_ax, engine_modes), (decode_ax, (DECODE,))):
        for i, mode in enumerate(modes):
            offset = (i - (len(modes) - 1) / 2) * width
            xs = [j + offset for j in range(len(scenarios))]
            rates = [s.rates(mode) for s in scenarios]
            meds = [r.median / 1000 for r in rates]
            errs = [[(r.median - r.low) / 1000 for r in rates], [(r.high - r.median) / 1000 for r in rates]]
            ax.bar(xs, meds, width, yerr=errs, capsize=3, label=mode, color=colors[mode])
            for x, m in zip(xs, meds, strict=True):
                ax.annotate(f"{m:,.0f}k", (x, m / 2), ha="center", va="center", fontsize=8, color="white",
                            fontweight="bold")  # fmt: skip
        ax.set_xticks(range(len(scenarios)), [s.name for s in scenarios])
    engine_ax.axhline(TARGET / 1000, color="red", linestyle="--", linewidth=1, label="target (decode + apply)")
    engine_ax.set_ylabel("thousand commands/s (median; whiskers: min-max)")
    engine_ax.set_title("Engine passes, one pinned core")
    engine_ax.legend(fontsize=8, loc="upper center", ncol=2)
    engine_ax.set_ylim(0, max(TARGET / 1000, *(s.rates(APPLY).high / 1000 for s in scenarios)) * 1.3)
    decode_ax.set_title("Decode only (same batches)")
    decode_ax.set_ylim(0, max(s.rates(DECODE).high / 1000 for s in scenarios) * 1.15)
    for s, color in zip(scenarios, ("#4c72b0", "#dd8452", "#55a868", "#c44e52"), strict=False):
        n = s.workload.n_commands
        values = [n / p.seconds / 1000 for p in s.passes[DECODE_APPLY]]
        reps_ax.plot(range(1, len(values) + 1), values, marker="o", color=color, label=f"{s.name}")
    reps_ax.axhline(TARGET / 1000, color="red", linestyle="--", linewidth=1)
    reps_ax.set_xlabel("repetition")
    reps_ax.set_xticks(range(1, len(scenarios[0].passes[DECODE_APPLY]) + 1))
    reps_ax.set_ylabel("thousand commands/s")
    reps_ax.set_title("Decode + apply, each repetition")
    reps_ax.legend(fontsize=8, loc="lower right")
    reps_ax.set_ylim(0, TARGET / 1000 * 1.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ---- entry point -------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--measured", type=int, default=200_000, help="commands in the measured window")
    parser.add_argument("--reps", type=int, default=9, help="repetitions of each pass")
    parser.add_argument("--batch", type=int, default=256, help="commands per journal batch")
    parser.add_argument("--resting", type=int, default=10_000, help="resting orders in the engine (total)")
    parser.add_argument("--warmup", type=int, default=20_000, help="mixed commands between prefill and window")
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=WorkloadConfig().seed)
    parser.add_argument("--symbols", type=int, nargs="+", default=[1, 10], help="scenarios, by number of symbols")
    parser.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the highest usable)")
    parser.add_argument("--out", type=Path, default=REPORT_DIR, help="where engine-core.md and .png are written")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (20k commands, 2 repetitions)")
    parser.add_argument("--one-scenario", type=Path, help=argparse.SUPPRESS)  # internal: see _in_own_process
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_scenario:
        return _one_scenario(args.one_scenario, args.name, args.config, args.reps, args.cpu)
    if args.quick:
        args.measured, args.reps, args.warmup = 20_000, 2, 2_000
    defaults = parser.parse_args([])
    changed = [
        f"--{name} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for name, v in vars(args).items()
        if name not in ("out", "quick", "one_scenario", "name", "config") and v != getattr(defaults, name)
    ]
    args_line = "".join(f" {c}" for c in changed)
    machine = machine_markdown()  # before pinning, so that it shows every usable core
    cpu = pin(args.cpu)
    meter = LoadMeter()
    started = time.perf_counter()
    scenarios = []
    for n in args.symbols:
        config = WorkloadConfig(
            symbols=n,
            seed=args.seed,
            resting=args.resting,
            warmup=args.warmup,
            measured=args.measured,
            batch=args.batch,
            accounts=args.accounts,
        )
        scenarios.append(_in_own_process(f"{n} symbol" + ("s" if n > 1 else ""), config, args.reps, cpu))
    elapsed = time.perf_counter() - started
    load = meter.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    plot(scenarios, args.out / "engine-core.png")
    report = render(scenarios, args.reps, machine, cpu, load, args_line, elapsed)
    (args.out / "engine-core.md").write_text(report)
    _log(f"wrote {args.out / 'engine-core.md'} and {args.out / 'engine-core.png'} ({elapsed:.0f} s)")
    for s in scenarios:
        da, ratio, risk = s.rates(DECODE_APPLY), s.ratio(), s.risk_ratio()
        print(
            f"{s.name}: decode+apply {da.median:,.0f}/s ({da.low:,.0f}-{da.high:,.0f}), ratio {ratio.median:.3f}, "
            f"risk on / off {risk.median:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
