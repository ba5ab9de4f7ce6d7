"""bench/reports/venue-latency.md: the machine, the command, every step's outcome, latency per hop, CPU per
process, and which process saturates first."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from bench.machine import machine_markdown
from bench.venue.hops import HOPS, Hop
from bench.venue.session import SETTLE_S, Step, due_p99
from bench.venue.stack import LOAD_LIMITS
from bench.venue.tally import Requests, failures

if TYPE_CHECKING:
    from bench.latency import LatencyRun

NOT_VENUE = ("bench load", "bench observers")


def _ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def hop_table(hops: dict[str, Hop]) -> list[str]:
    out = ["| hop | what it spans | samples | p50 ms | p99 ms | p99.9 ms | max ms |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for name, h in hops.items():
        what = HOPS.get(name)
        if what is None:  # a WebSocket client straight on one feed: as the front door's, without nginx
            client = name.partition("(")[2].rstrip(")")
            front = HOPS.get(name.split("(")[0] + "(front door)", "")
            what = front.replace("a client of the front door", f"a client of {client} (no front door)")
        neg = f" ({h.negatives} below 0)" if h.negatives else ""
        out.append(f"| {name} | {what} | {h.count:,}{neg} | {_ms(h.ms(50))} | {_ms(h.ms(99))} | {_ms(h.ms(99.9))} "
                   f"| {_ms(h.max_ms())} |")  # fmt: skip
    return out


def served(step: Step) -> float:
    """Requests answered 200 within the step's window, per second: what the venue kept up with while offered
    ``step.rate`` (above its capacity, the rest waits in queues and is answered after the window)."""
    req = Requests.of([step.result])
    return float((req.ok() & (req.resp >= step.t0) & (req.resp < step.t1)).sum()) / step.seconds


def step_rows(steps: list[Step]) -> list[str]:
    out = ["| step | offered /s | answered 200 in the window /s | refused | failed | p99 due → answer ms "
           "| engine lag at end | PG lag at end (events) | caught up after | machine busy | sustained |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]  # fmt: skip
    for s in steps:
        req = Requests.of([s.result])
        ok = int(req.ok().sum())
        bad = sum(failures(req.counts()).values())
        refused = len(req.kind) - ok - bad
        p99 = due_p99(req, s.t0)
        verdict = "yes" if s.sustained else f"no: {s.why}"
        out.append(f"| {s.label} | {s.rate:,.0f} | {served(s):,.0f} | {refused:,} | {bad:,} | {_ms(p99)} "
                   f"| {s.engine_lag_end:,} | {s.pg_lag_end:,} | {s.drain_s:.1f} s | {s.machine_busy:.0f}% "
                   f"| {verdict} |")  # fmt: skip
    return out


def cpu_rows(steps: list[Step]) -> list[str]:
    names: list[str] = []
    for s in steps:
        names += [n for n in s.cpu if n not in names]
    out = ["| process | " + " | ".join(s.label for s in steps) + " |", "| --- |" + " ---: |" * len(steps)]
    for name in sorted(names, key=lambda n: -max(s.cpu.get(n, 0.0) for s in steps)):
        out.append(f"| {name} | " + " | ".join(f"{s.cpu.get(name, 0.0):.0f}" for s in steps) + " |")
    out.append("| **all of these** | " + " | ".join(f"{sum(s.cpu.values()):.0f}" for s in steps) + " |")
    return out


def saturation(run: LatencyRun) -> list[str]:
    """Which process is nearest a whole core, and how full the machine is, at the highest rates measured."""
    ramp = [s for s in run.steps if s.label != "warm-up"]
    if not ramp:
        return []
    cores = os.cpu_count() or 1
    best = run.best()
    top = max(ramp, key=lambda s: s.rate)
    out = []
    for s in ([best] if best is not None and best is not top else []) + [top]:
        venue = {k: v for k, v in s.cpu.items() if k not in NOT_VENUE}
        ranked = sorted(venue.items(), key=lambda kv: -kv[1])[:4]
        load = sum(v for k, v in s.cpu.items() if k in NOT_VENUE)
        out.append(f"- At {s.rate:,.0f}/s ({'sustained' if s.sustained else 'not sustained'}): the machine was "
                   f"{s.machine_busy:.0f}% busy ({cores} cores); the venue's processes used "
                   f"{sum(venue.values()):.0f}% of one core, the load and the observers {load:.0f}%. Busiest: "
                   + ", ".join(f"{k} {v:.0f}%" for k, v in ranked) + ".")  # fmt: skip
    # CPU per request where the venue served the most: at lower rates the persisters commit smaller batches and
    # every process wakes per request, so their cost per request is higher there and says less about capacity
    basis = max(ramp, key=served)
    rate = served(basis)
    per_order = {k: v / 100 * 1000 / rate for k, v in basis.cpu.items()} if rate else {}
    total = sum(v for k, v in per_order.items() if k not in NOT_VENUE)
    out += ["", f"The most the venue served within a step's window: {rate:,.0f} requests/s ({basis.label}). CPU per "
            "request there, by process (ms of CPU over the window per request answered in it):", ""]  # fmt: skip
    out += ["| process | CPU ms per request |", "| --- | ---: |"]
    out += [f"| {k} | {v:.2f} |" for k, v in sorted(per_order.items(), key=lambda kv: -kv[1])]
    out += [f"| **the venue (all but the bench's own)** | **{total:.2f}** |", ""]
    if total > 0:
        out += [f"No single process is near a whole core: the machine is what fills. At {total:.2f} ms of CPU per "
                f"request, {cores} cores would carry about {1000 * cores / total:,.0f} requests/s with nothing else "
                f"running, and 10,000/s would take about {total * 10:,.0f} cores.", ""]  # fmt: skip
    return out


def render(run: LatencyRun, figures: list[str]) -> str:
    best = run.best()
    latency = next((s for s in run.steps if s.label.startswith("latency")), None)
    out = ["# The whole venue: latency per hop and the highest sustained order rate", ""]
    out += ["Reproduce: `python -m bench latency" + "".join(f" {a}" for a in run.argv) + "` (from the repository root; "
            f"this run took {run.seconds:.0f} s, started {run.started})", "", machine_markdown(), ""]  # fmt: skip
    out += [f"Machine busy before the venue started (other work on this shared machine): {run.background_busy:.0f}%"
            " of all cores.", ""]  # fmt: skip
    out += ["## What ran", ""]
    out += ["A private venue started like `./mercury start` (bench/venue/stack.py): Redis (AOF everysec), PostgreSQL, "
            "FerretDB, the sequencer, the engine, the PostgreSQL and MongoDB persisters, two HTTP gateways, two feeds "
            "and the front door (nginx), every one a real process on this machine. Settings as the Procfile's except "
            + ", ".join(f"`MERCURY_{k.upper()}={v}`" for k, v in LOAD_LIMITS.items())
            + ": the gateways count request weight per client IP, and behind the front door every request comes from "
            "nginx's 127.0.0.1. The per-account order limit stays at its default (100 per 10 s), so each step spreads "
            "its orders over as many accounts as its rate needs (rate x 10 s / 100 x 1.5, bench/venue/accounts.py; "
            f"{run.accounts:,} funded accounts with HMAC keys for the highest rate), and no more: a gateway caches "
            "a key for 5 s, and a key used less often than that costs a PostgreSQL lookup and a decryption on every "
            "request (a first run that spread 250 orders/s over 1,500 accounts spent 1.6 times the gateway CPU per "
            "order).", ""]  # fmt: skip
    out += ["One load process (bench/venue/loadgen.py, open loop: each request leaves at its due time whatever the "
            "earlier ones did) sends signed REST requests through the front door on keep-alive connections: 55% "
            "passive LIMIT GTC orders near a fixed mid, 10% LIMIT IOC takers through the mid (they trade), 35% "
            "cancels of resting orders beyond the takers' reach; new orders ask for the ACK answer (journaled). "
            f"Latency counts requests due {SETTLE_S:g} s or more into a step (its first second opens connections and "
            "loads API keys into the gateways' caches), from the request's write; `p99 due → answer` below starts at "
            "its due time, so it also "
            "counts time queued in the client when the venue falls behind.", ""]  # fmt: skip
    out += ["Observation points (bench/venue/observe.py; nothing is added to the venue's messages): a subscriber on "
            "the sequencer's journal PUB (a batch is published there once Redis accepted it; each command carries "
            "the sequencer's stamp), a subscriber on the engine's PUB (first event of each command, trades, "
            "heartbeats), WebSocket clients on `btcusdt@trade` through the front door and on each feed directly, a "
            "poll of PostgreSQL's `consumer_offsets` every 5 ms (committed with the rows) and of the MongoDB "
            "persister's offset in the Redis registry every 5 ms. All times are CLOCK_REALTIME on one machine. "
            "Each observer is itself a process waiting for a core, so every hop includes its scheduling delay; "
            "the polls add up to their period.", ""]  # fmt: skip
    out += ["## Steps", "", *step_rows(run.steps), ""]
    if best is not None:
        out += [f"**Highest sustained rate in this run: {best.rate:,.0f} orders/s** through the front door (the "
                "seed's bar is 10,000/s). Sustained means: no failed request, under 0.1% refused (429, 503 -1008), "
                "97% of offered answered 200, p99 from due to answer under 500 ms, and the engine and both "
                "persisters caught up within 10 s of the step.", ""]  # fmt: skip
    else:
        out += ["**No step was sustained in this run.**", ""]
    # the latency step, and the highest sustained one when that is another: each once (a latency step that was
    # also the best was skipped both times, and the report had no hop table)
    shown = [latency] if latency is not None else []
    if best is not None and best is not latency:
        shown.append(best)
    for s in shown:
        if s.label not in run.hops:
            continue
        out += [f"## Latency per hop at {s.rate:,.0f} orders/s ({s.label})", ""]
        out += [*hop_table(run.hops[s.label]), ""]
    out += ["## CPU per process (% of one core, over each step's window)", "", *cpu_rows(run.steps), ""]
    out += ["## Which saturates first", "", *saturation(run), ""]
    out += ["The engine's refusals during the run: " + (", ".join(f"{k} x{v}" for k, v in run.refusals.items())
                                                      or "none") + ".", ""]  # fmt: skip
    if run.reconnects and any(run.reconnects.values()):
        out += ["WebSocket reconnects of the observers: " + ", ".join(f"{k} {v}" for k, v in run.reconnects.items()),
                ""]  # fmt: skip
    out += ["## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    out += ["Warnings and errors in the venue's logs during the run: " + (str(len(run.warnings)) if run.warnings
                                                                         else "none.")]  # fmt: skip
    out += [f"    {line[:200]}" for line in run.warnings[:15]]
    return "\n".join(out) + "\n"
