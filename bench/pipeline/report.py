"""The markdown report (pipeline.md) of one run."""

from __future__ import annotations

import os
import shlex
import sys

import redis
import zmq

from bench.machine import machine_markdown
from bench.pipeline.constants import ACCOUNTS_PER_WORKER, BACKLOGGED, RESTING_PER_WORKER, SETTLE_S
from bench.pipeline.figures import CPU_ROLES, _group_us, _ms, per_command_us
from bench.pipeline.findings import bottleneck_text, findings_text, realised_mix
from bench.pipeline.run import Run
from bench.pipeline.steps import DISTURBED, highest_sustained


def _cmd_line() -> str:
    return shlex.join(["python", "-m", "bench.pipeline", *sys.argv[1:]])


def render(run: Run) -> str:
    args = run.args
    best = highest_sustained(run.ramp)
    ncpu = os.cpu_count() or 1
    out: list[str] = []
    add = out.append
    add("# Pipeline benchmark: client -> sequencer -> Redis journal -> engine -> events")
    add("")
    add(
        f"Written by `python -m bench.pipeline` on {run.started}, from one run of {run.seconds:.0f} s: do not "
        "edit by hand, run it again. Every figure comes from that one run against one venue (tests.harness.Venue: "
        "redis-server with AOF on and `appendfsync everysec`, `python -m sequencer`, `python -m engine`, ipc "
        "sockets), so the figures can be read against each other."
    )
    add("")
    add("```sh")
    add(_cmd_line())
    add("```")
    add("")
    add("## Summary")
    add("")
    if best is not None:
        verdict = "met" if best.offered >= 50_000 else "**missed**"
        add(
            f"- **Highest sustained rate: {best.offered:,.0f} commands/s** ({best.answered_rate:,.0f}/s "
            f"acknowledged, {best.engine_rate:,.0f}/s applied by the engine, no backlog left, no BUSY). "
            f"Target 50,000/s: {verdict}."
        )
    else:
        add("- **No offered rate was sustained** (see the throughput table).")
    lucky = [s for s in run.ramp if s.sustained and best is not None and s.offered > best.offered]
    if lucky:
        add(
            "- Above the first failed rate, "
            + ", ".join(f"{s.offered:,.0f}/s" for s in lucky)
            + " passed too: on this drifting machine a rate that passes only above one that failed is not counted."
        )
    for row in run.latency_rows:
        p = row.pct_ms
        target = ""
        if row.what == "ack" and row.rate == 10_000:
            target = f" Target p99 < 2 ms: {'met' if p['p99'] < 2 else '**missed**'}."
        add(
            f"- Latency at {row.rate:,.0f}/s to {row.what}: p50 {_ms(p['p50'])} ms, p99 **{_ms(p['p99'])} ms**, "
            f"p99.9 {_ms(p['p99.9'])} ms, max {_ms(p['max'])} ms.{target}"
        )
    if run.redis:
        add(
            "- Redis in the same run: "
            + "; ".join(f"{lim.name}: {lim.commands_per_s:,.0f} commands/s" for lim in run.redis)
            + "."
        )
    if best is not None:
        us = per_command_us(best)
        add(
            f"- At {best.offered:,.0f}/s a command costs {sum(us.values()):.0f} µs of CPU in all (sequencer "
            f"{_group_us(us, 'sequencer'):.1f}, engine {_group_us(us, 'engine'):.1f}, Redis {us.get('redis', 0):.1f}"
            f", load generator {_group_us(us, 'load'):.1f}) and the machine was {best.machine_busy:.0f}% busy: the "
            f"{ncpu} cores, shared by every process of the pipeline and its load, are what runs out (section 4)."
        )
    add("")
    add("## Machine")
    add("")
    add(machine_markdown().rstrip("\n"))
    rv = run.redis_info
    add(
        f"| redis-server | {rv.get('redis_version', '?')}, AOF {'on' if rv.get('aof_enabled') == '1' else 'off'}, "
        f"appendfsync {rv.get('appendfsync', '?')}; at the end: {rv.get('used_memory_human', '?')} used, AOF "
        f"{int(rv.get('aof_current_size', '0') or 0) / 2**20:,.0f} MiB, {rv.get('total_forks', '?')} fork(s) "
        "(AOF rewrites) during the run |"
    )
    add(f"| pyzmq / libzmq / redis-py | {zmq.__version__} / {zmq.zmq_version()} / {redis.__version__} |")
    add(
        f"| load | {run.workers} load process(es), open loop, one DEALER each; throughput steps send what is due "
        f"at most every {args.send_quantum_us:g} µs, latency runs send every command at its own time |"
    )
    add(f"| CPU busy before the venue started | {run.background_busy:.0f}% of all cores |")
    add("")
    add(
        "This is a shared virtual machine: its speed drifts between runs (Redis PING round trips measured 40 to 150 "
        "µs in different runs on the same day), so compare figures within this report, not across runs. The script "
        "waits for the machine to be quiet before each step, measures what other processes used during it (column "
        f"*others* below) and repeats a step once if they took more than {DISTURBED:.0f}% of a core."
    )
    add("")
    add("## 1. The machine's own limits")
    add("")
    add("Against the venue's own redis-server, with redis-py as the sequencer uses it, from the benchmark process:")
    add("")
    add("| operation | round trips/s | µs per round trip | commands/s |")
    add("| --- | ---: | ---: | ---: |")
    for lim in run.redis:
        add(f"| {lim.name} | {lim.round_trips_per_s:,.0f} | {lim.us_per_round_trip:,.1f} | {lim.commands_per_s:,.0f} |")
    add("")
    add(
        f"A command is the frame the load sends (a BTCUSDT order or cancel, {run.frame_bytes:.0f} bytes on "
        "average); the batch is a `RawJournalBatch` of 256 of them, exactly what the sequencer writes. Journaling "
        "one batch per round trip, Redis is far from any limit met below."
    )
    add("")
    add(
        "The Python plumbing every command goes through in the sequencer (the same pyzmq calls on a private "
        "ROUTER <- DEALER pair over ipc, and the same codecs), µs per operation in one process:"
    )
    add("")
    add("| operation | µs |")
    add("| --- | ---: |")
    for cost in run.plumbing:
        add(f"| {cost.name} | {cost.us:.2f} |")
    add("")
    add(
        f"## 2. Latency, open loop at a constant rate ({args.latency_seconds:g} s measured after {SETTLE_S:g} s "
        "warm-up, one load process)"
    )
    add("")
    add(
        "From each command's *scheduled* send time (corrected for coordinated omission: a sender that falls "
        "behind adds its delay to the latency) to (a) its acknowledgement (journaled in Redis) at the client and "
        "(b) the first event it caused as the client receives it on the engine's `x/` topic (applied by the "
        "engine, written to the events stream, published). HDR histogram, 3 significant digits, ms."
    )
    add("")
    add("| offered | to | samples | p50 | p90 | p99 | p99.9 | max | missing |")
    add("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in run.latency_rows:
        p = row.pct_ms
        add(
            f"| {row.rate:,.0f}/s | {row.what} | {row.count:,} | {_ms(p['p50'])} | {_ms(p['p90'])} | "
            f"{_ms(p['p99'])} | {_ms(p['p99.9'])} | {_ms(p['max'])} | {row.missing:,} |"
        )
    add("")
    for step in run.latency:
        add(
            f"- {step.label}: acknowledged {step.answered_rate:,.0f}/s, engine {step.engine_rate:,.0f}/s; the load "
            f"sent {step.late_sends:,} commands more than 1 ms late (worst {step.max_send_lag_ms:.1f} ms); machine "
            f"{step.machine_busy:.0f}% busy."
        )
    add("")
    add("![latency](pipeline-latency.png)")
    add("")
    add(f"## 3. Throughput: open-loop steps of {args.step_seconds:g} s")
    add("")
    add(
        f"Rates are taken from {SETTLE_S:g} s into each step to its end. *Sustained*: sent, acknowledged and "
        "applied (engine heartbeat `in_seq`) at >= 97% of the offered rate, neither backlog above max(500, 50 ms "
        f"of load) at the end (the lowest of the last 0.5 s, so that a blip is not taken for growth) nor during "
        f"more than {100 * BACKLOGGED:.0f}% of the window (*backlogged*, sampled every 0.1 s: a queue that builds "
        "up and drains again means the step ran at its limit), no command refused. In flight = sent - "
        "acknowledged; engine lag = journaled `in_seq` - engine heartbeat `in_seq`. Ack latency is from the "
        "scheduled send time here too. The ramp stops after two failed steps, then bisects between the highest "
        "sustained rate and the next one."
    )
    add("")
    add(
        "| offered/s | sent/s | acked/s | engine/s | in flight end (max) | engine lag end (max) | backlogged | "
        "BUSY | ack p50 ms | ack p99 ms | drain s | AOF rewrites | sustained |"
    )
    add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for s in run.ramp:
        a = s.ack_pct
        verdict = "yes" if s.sustained else "no: " + s.why
        if s.repeats:
            verdict += f" (repeated {s.repeats}x: other processes)"
        add(
            f"| {s.offered:,.0f} | {s.sent_rate:,.0f} | {s.answered_rate:,.0f} | {s.engine_rate:,.0f} | "
            f"{s.in_flight_end:,} ({s.in_flight_max:,}) | {s.engine_lag_end:,} ({s.engine_lag_max:,}) | "
            f"{100 * s.backlogged:.0f}% | {s.statuses.get('BUSY', 0):,} | {_ms(a.get('p50', 0))} | "
            f"{_ms(a.get('p99', 0))} | {s.drain_s:.1f} | "
            + (f"{s.forks} (fork {s.fork_ms:.0f} ms)" if s.forks else "0")
            + f" | {verdict} |"
        )
    add("")
    add("![achieved vs offered, and CPU per step](pipeline.png)")
    add("")
    add(f"### Where the CPU goes (% of one core over each step's window; {ncpu} cores = {100 * ncpu}%)")
    add("")
    add("| offered/s | " + " | ".join(CPU_ROLES) + " | others | machine busy |")
    add("| ---: | " + " | ".join("---:" for _ in CPU_ROLES) + " | ---: | ---: |")
    for s in [*run.latency, *run.ramp]:
        name = f"{s.offered:,.0f}" + (" (latency run)" if s in run.latency else "")
        add(
            f"| {name} | "
            + " | ".join(f"{s.cpu.get(role, 0):.0f}" for role in CPU_ROLES)
            + f" | {s.others:.0f} | {s.machine_busy:.0f}% |"
        )
    add("")
    add(
        "*sequencer*, *engine matching*, *load*: the processes' main threads (the engine's matching thread is "
        "pinned to one core); *engine writer*: the engine's event-writer thread (events-stream XADDs, per-topic "
        "encoding and PUB sends, heartbeats), which shares the engine process's GIL with the matching thread; "
        "*zmq I/O*: libzmq's background threads; *bench (monitor)*: this script sampling heartbeats and the "
        "journal; *others*: machine busy minus all of these (other processes, kernel threads)."
    )
    add("")
    shown = [s for s in (run.latency[-1] if run.latency else None, best) if s is not None]
    if shown:
        add("CPU per acknowledged command, µs:")
        add("")
        add("| at | " + " | ".join(CPU_ROLES) + " | total |")
        add("| --- | " + " | ".join("---:" for _ in CPU_ROLES) + " | ---: |")
        for s in shown:
            us = per_command_us(s)
            add(
                f"| {s.label} | "
                + " | ".join(f"{us.get(role, 0):.1f}" for role in CPU_ROLES)
                + f" | {sum(us.values()):.1f} |"
            )
        add("")
    add("## 4. What limits the pipeline")
    add("")
    add(bottleneck_text(run))
    add("")
    add("## 5. Performance problems seen in this run")
    add("")
    add(findings_text(run))
    add("")
    add("## Method and caveats")
    add("")
    add(
        "- Load: each load process builds its frames before a step (not timed), then sends each at its scheduled "
        "time on a DEALER without waiting for answers and reads the acknowledgements in the same loop, sleeping "
        "in `select()` on the ZeroMQ descriptors (timer slack 1 µs) so that an ack is timed when it arrives. Order "
        f"flow on BTCUSDT around a 100,000.00 USDT mid: ~45% passive limit orders 1-50 ticks from the mid, ~45% "
        f"cancels (by client order id) of the process's own resting orders, of which it keeps ~"
        f"{RESTING_PER_WORKER:,}, and 10% LIMIT IOC orders 1-4 ticks through the mid that trade; "
        f"{ACCOUNTS_PER_WORKER:,} accounts per process; quantities from 0.0001 BTC, median ~0.002 BTC. "
        f"Realised over the measured steps: {realised_mix(run)}."
    )
    add(
        f"- In the throughput steps a load process sends what is due at most every {args.send_quantum_us:g} µs "
        "(so a few to a few dozen commands at a time, as a gateway serving many clients would); latency is still "
        "counted from each command's own scheduled time. Without this the load process wakes once per command "
        "and costs several times more CPU, which it takes from the sequencer and the engine on this 2-core machine."
    )
    add(
        "- The load processes, the sequencer, the engine (two Python threads), Redis and this script share the "
        f"machine's {ncpu} cores; the load is part of every CPU figure above, as it would not be with the gateways "
        "on other machines."
    )
    add(
        "- Engine progress is its heartbeat `in_seq`, sent by the event writer after the events of those commands "
        "are in the events stream and published: the engine's figures include the writer."
    )
    add(
        "- The venue runs with its defaults (MERCURY_BUSY_LAG=100000, MERCURY_MAX_BATCH=4096, a snapshot every "
        "200,000 commands); nothing was tuned for the benchmark. CPU times are each thread's utime + stime from "
        "/proc; machine busy is 100% minus the kernel's idle time (/proc/uptime), which stays exact on this "
        "tickless guest where the busy counters of /proc/stat do not."
    )
    add("")
    return "\n".join(out)
