"""The report's reasoning sections: what limits the pipeline, and the performance problems a run shows."""

from __future__ import annotations

import os
from collections import Counter

from bench.pipeline.constants import BACKLOGGED
from bench.pipeline.figures import _compare, _group_us, _ms, _plumbing, _source, engine_core_figure, per_command_us
from bench.pipeline.run import Run
from bench.pipeline.steps import highest_sustained


def realised_mix(run: Run) -> str:
    kinds: Counter[str] = Counter()
    for step in [*run.latency, *run.ramp]:
        for res in step.results:
            kinds.update(res.kinds)
    total = sum(kinds.values()) or 1
    names = {"limit": "passive limit", "cancel": "cancel", "limit_ioc": "LIMIT IOC"}
    return ", ".join(f"{100 * v / total:.1f}% {names.get(k, k)}" for k, v in kinds.most_common()) + (
        f" of {total:,} commands"
    )


def _rewrite_steps(run: Run) -> str:
    hit = [s for s in run.ramp if s.forks]
    if not hit:
        return "No throughput step had one."
    ok = [s for s in hit if s.sustained]
    return (
        "Throughput steps during which a rewrite ran: "
        + ", ".join(
            f"{s.offered:,.0f}/s ({'sustained' if s.sustained else 'not sustained'}, Redis "
            f"{s.cpu.get('redis', 0):.0f}% of a core, its fork blocked Redis {s.fork_ms:.0f} ms)"
            for s in hit
        )
        + f"; {len(ok)} of {len(hit)} sustained. While Redis forks, no XADD is answered, so acknowledgements and "
        "events stall for that long; afterwards the rewrite's CPU and disk work is taken from the pipeline on "
        "2 cores."
    )


def bottleneck_text(run: Run) -> str:
    """Which stage fell behind first above the highest sustained rate, and what the CPU was doing meanwhile."""
    best = highest_sustained(run.ramp)
    above = [s for s in run.ramp if not s.sustained and (best is None or s.offered > best.offered)]
    ncpu = os.cpu_count() or 1
    out: list[str] = []
    if not above:
        return "No step above the highest sustained rate failed: the limit lies above the rates tried."
    fail = above[0]
    stages = []
    if fail.sent_rate < 0.97 * fail.offered:
        stages.append(f"the load processes sent only {fail.sent_rate:,.0f}/s")
    if fail.answered_rate < 0.97 * fail.sent_rate:
        stages.append(
            f"the sequencer acknowledged {fail.answered_rate:,.0f}/s of {fail.sent_rate:,.0f}/s sent "
            f"({fail.in_flight_end:,} unacknowledged at the end)"
        )
    if fail.engine_rate < 0.97 * fail.answered_rate or fail.engine_lag_end > max(500, 0.05 * fail.offered):
        stages.append(
            f"the engine applied {fail.engine_rate:,.0f}/s and ended {fail.engine_lag_end:,} journaled commands behind"
        )
    limit = max(500.0, 0.05 * fail.offered)
    if fail.in_flight_end > limit and fail.answered_rate >= 0.97 * fail.sent_rate:
        stages.append(f"{fail.in_flight_end:,} commands were still unacknowledged at the end")
    if fail.backlogged > BACKLOGGED:
        stages.append(
            f"a backlog over 50 ms of load stood during {100 * fail.backlogged:.0f}% of the window (ack p50 "
            f"{_ms(fail.ack_pct.get('p50', 0))} ms)"
        )
    if fail.forks:
        stages.append(f"Redis forked for an AOF rewrite during the step (blocked {fail.fork_ms:.0f} ms)")
    busy = fail.statuses.get("BUSY", 0)
    cpu = fail.cpu
    seq = cpu.get("sequencer", 0)
    eng = cpu.get("engine matching", 0) + cpu.get("engine writer", 0)
    out.append(
        f"The first rate above {best.offered:,.0f}/s that failed, {fail.offered:,.0f}/s: "
        if best is not None
        else f"At {fail.offered:,.0f}/s: "
    )
    out[-1] += (
        ("; ".join(stages) if stages else "a backlog was left at the end of the window")
        + (f"; {busy:,} new orders were refused BUSY" if busy else "")
        + "."
    )
    out.append("")
    saturated = []
    if seq >= 90:
        saturated.append(f"the sequencer's thread ({seq:.0f}% of a core)")
    if eng >= 90:
        saturated.append(f"the engine's GIL (matching + writer {eng:.0f}% of a core)")
    if saturated:
        out.append("Saturated at that rate: " + " and ".join(saturated) + ".")
    else:
        out.append(
            f"No single stage was saturated there: the sequencer's thread used {seq:.0f}% of a core, the engine's "
            f"two threads together {eng:.0f}% (they share one GIL, so 100% would be its ceiling), Redis "
            f"{cpu.get('redis', 0):.0f}%, the load {cpu.get('load', 0) + cpu.get('load zmq I/O', 0):.0f}%, "
            f"libzmq's I/O threads {sum(v for k, v in cpu.items() if 'zmq' in k and 'load' not in k):.0f}%, "
            f"others {fail.others:.0f}%; the machine was {fail.machine_busy:.0f}% busy. "
            f"{sum(1 for v in cpu.values() if v >= 5)} threads busier than 5% of a core share {ncpu} cores: what "
            "runs out is the machine, and each stage falls behind by waiting for a core, not by using one up."
        )
    if best is not None:
        us = per_command_us(best)
        total = sum(us.values())
        bound = ncpu * 1e6 / total if total else 0.0
        venue = total - _group_us(us, "load") - us.get("bench (monitor)", 0)
        out.append("")
        out.append(
            f"The arithmetic agrees: at {best.offered:,.0f}/s one command costs {total:.0f} µs of CPU in all, so "
            f"{ncpu} cores carry at most ~{bound:,.0f} commands/s of this pipeline together with its load "
            f"generator. Without the load generator and this script ({venue:.0f} µs per command) the venue alone "
            f"would fit ~{ncpu * 1e6 / venue:,.0f} commands/s on {ncpu} cores — before any contention."
        )
        core = engine_core_figure()
        if core is not None:
            ns = 1e9 / core[0]
            out.append("")
            out.append(
                f"The engine core is not the limit: bench/reports/engine-core.md measures {core[1]} "
                f"({ns / 1000:.1f} µs per command on one core, no I/O). In this pipeline the engine's matching "
                f"thread spent {us.get('engine matching', 0):.1f} µs per command (decode + apply + handing the "
                f"events to the writer) and its event writer {us.get('engine writer', 0):.1f} µs."
            )
    batch = [lim for lim in run.redis if "256-command batch" in lim.name]
    if batch:
        out.append("")
        out.append(
            f"Redis is not the limit: one XADD of a 256-command batch took {batch[0].us_per_round_trip:.0f} µs "
            f"({batch[0].commands_per_s:,.0f} commands/s), and Redis used {cpu.get('redis', 0):.0f}% of a core "
            f"in the failing step."
        )
    return "\n".join(out)


def findings_text(run: Run) -> str:
    """Costs in the sequencer and engine code that this run shows, with its own numbers."""
    best = highest_sustained(run.ramp)
    lat = run.latency[-1] if run.latency else None
    out: list[str] = []
    recv_mp = _plumbing(run, "`recv_multipart")
    send_mp = _plumbing(run, "`send_multipart")
    send_plain = _plumbing(run, "the same ack")
    recv_plain = _plumbing(run, "the same command")
    rcvmore = _plumbing(run, "one `getsockopt(RCVMORE)`")
    seq_src = _source("sequencer/service.py")
    writer_src = _source("engine/service.py")
    if best is not None:
        us = per_command_us(best)
        writer, matching = us.get("engine writer", 0), us.get("engine matching", 0)
        sends = (
            "with `send_multipart`"
            if "send_multipart([topic" in writer_src
            else "frame by frame with `send` (already the cheaper form)"
        )
        out.append(
            f"1. **The engine's event writer costs {_compare(writer, matching)} the matching.** At "
            f"{best.offered:,.0f}/s the writer "
            f"thread used {best.cpu.get('engine writer', 0):.0f}% of a core ({writer:.1f} µs per command) against "
            f"{best.cpu.get('engine matching', 0):.0f}% ({matching:.1f} µs) for the matching thread"
            + (
                f"; at {lat.offered:,.0f}/s {lat.cpu.get('engine writer', 0):.0f}% against "
                f"{lat.cpu.get('engine matching', 0):.0f}%"
                if lat is not None
                else ""
            )
            + ". Both share the engine's GIL, so the writer's time is taken from the matching. Per loop it makes "
            "one Redis round trip (pipelined XADDs) and sends a heartbeat; per batch it encodes and publishes the "
            "batch on `x/`, then groups the events by account and symbol and encodes and sends each group "
            f"{sends}: with thousands of accounts that is one more encode and message per command, whether or not "
            "anyone subscribed to that account. Lighter: fan out per account only for topics someone subscribed "
            "to (an XPUB socket tells), or in a separate process that reads `x/`; one heartbeat every few "
            "milliseconds rather than one per loop."
        )
        seq_us = _group_us(us, "sequencer")
        if "router.recv_multipart(" in seq_src or "self.router.send_multipart" in seq_src:  # per command
            saving = max(0.0, recv_mp + send_mp - recv_plain - send_plain)
            out.append(
                f"2. **The sequencer spends a large share of each command in pyzmq's Python layer.** At "
                f"{best.offered:,.0f}/s it used {seq_us:.1f} µs of CPU per command (main thread + libzmq I/O); "
                f"`recv_multipart` of a command costs {recv_mp:.2f} µs and `send_multipart` of its ack "
                f"{send_mp:.2f} µs (section 1), against {recv_plain:.2f} µs for `recv` + `recv` + one "
                f"`get(RCVMORE)` and {send_plain:.2f} µs for two plain `send` calls: ~{saving:.1f} µs less per "
                "command with the same frame-count check."
            )
        else:
            checks = seq_src.count("more(zmq.RCVMORE)")
            extra = (
                f" It still asks `getsockopt(RCVMORE)` {checks} times per command ({rcvmore:.2f} µs each here); a "
                "ROUTER always delivers the identity and at least one frame, so the check before the body can go."
                if checks > 1
                else ""
            )
            out.append(
                f"2. **The sequencer's per-command pyzmq calls.** It receives and acknowledges frame by frame "
                f"(section 1: {recv_plain:.2f} + {send_plain:.2f} µs a command, against {recv_mp:.2f} + "
                f"{send_mp:.2f} µs with `recv_multipart` / `send_multipart`); at {best.offered:,.0f}/s it used "
                f"{seq_us:.1f} µs of CPU per command in all (main thread + libzmq I/O).{extra}"
            )
    if lat is not None and best is not None:
        lus, bus = per_command_us(lat), per_command_us(best)
        single = [lim for lim in run.redis if lim.name.startswith("XADD of one command")]
        rt = f" (one XADD round trip took {single[0].us_per_round_trip:.0f} µs in section 1)" if single else ""
        ack = next((r for r in run.latency_rows if r.rate == lat.offered and r.what == "ack"), None)
        out.append(
            f"3. **Commands that arrive alone are expensive, and that is what costs the latency target.** At "
            f"{lat.offered:,.0f}/s (latency run) one command took {sum(lus.values()):.0f} µs of CPU in all "
            f"(sequencer {_group_us(lus, 'sequencer'):.0f}, engine {_group_us(lus, 'engine'):.0f}, load "
            f"{_group_us(lus, 'load'):.0f}) against {sum(bus.values()):.0f} µs at {best.offered:,.0f}/s: at that "
            "rate most commands reach the sequencer alone, so each pays its own Redis round trip in the sequencer"
            f"{rt}, another in the engine's writer, a heartbeat, and the wake-ups of the ZeroMQ I/O threads on "
            f"both sides. The machine was {lat.machine_busy:.0f}% busy at {lat.offered:,.0f}/s"
            + (f" and the ack p99 was {_ms(ack.pct_ms['p99'])} ms" if ack is not None else "")
            + ": the tail is time spent waiting for a core. Batching only sets in once commands queue up. Making "
            "the per-command path cheaper (item 2) and the writer's per-batch work lighter (item 1) is what would "
            "bring it down; moving the load generator off the machine would too (it used "
            f"{lat.cpu.get('load', 0) + lat.cpu.get('load zmq I/O', 0):.0f}% of a core in that run)."
        )
    forks = run.redis_info.get("total_forks", "0")
    if forks.isdigit() and int(forks) > 0:
        aof_mib = int(run.redis_info.get("aof_current_size", "0") or 0) / 2**20
        out.append(
            f"{len(out) + 1}. **Redis rewrote its AOF {forks} times in this {run.seconds:.0f} s run** (a fork that "
            f"writes the whole dataset each time; {run.redis_info.get('used_memory_human', '?')} in memory and a "
            f"{aof_mib:,.0f} MiB AOF at the end). Neither the journal nor the events stream is ever trimmed, so "
            "every rewrite is bigger than the last; the *redis* CPU column includes the rewriting child process, "
            "which is why it jumps between steps. "
            + _rewrite_steps(run)
            + " A venue that runs for days will spend ever more CPU and disk on rewrites unless the streams are "
            "trimmed behind a snapshot (journal) and behind the persisters (events)."
        )
    if not out:
        return "Nothing to report: no sustained step and no latency run."
    return "\n".join(out)
