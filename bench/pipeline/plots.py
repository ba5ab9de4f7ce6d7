"""The report's plots: pipeline.png (throughput, CPU per step) and pipeline-latency.png."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from bench.pipeline.constants import SETTLE_S
from bench.pipeline.figures import CPU_ROLES, _k
from bench.pipeline.run import Run
from bench.pipeline.steps import highest_sustained, latencies_ms


def plot(run: Run, out: Path) -> None:
    steps = run.ramp
    x = [s.offered / 1000 for s in steps]
    fig = Figure(figsize=(14, 5.5))
    ax, bx = fig.subplots(1, 2)
    top = max([*x, 60.0]) * 1.05
    ax.plot([0, top], [0, top], "k:", lw=1, label="achieved = offered")
    ax.plot(x, [s.sent_rate / 1000 for s in steps], "o-", label="sent by the load")
    ax.plot(x, [s.answered_rate / 1000 for s in steps], "s-", label="acknowledged (journaled)")
    ax.plot(x, [s.engine_rate / 1000 for s in steps], "^-", label="applied by the engine (heartbeat)")
    bad = [s for s in steps if not s.sustained]
    if bad:
        ax.scatter([s.offered / 1000 for s in bad], [s.engine_rate / 1000 for s in bad], s=140, facecolors="none",
                   edgecolors="red", label="not sustained")  # fmt: skip
    ax.axvline(50, color="grey", lw=0.8, ls="--")
    best = highest_sustained(steps)
    if best is not None:
        ax.axvline(best.offered / 1000, color="green", lw=0.8, ls=":")
        ax.text(best.offered / 1000 + 0.5, top * 0.10, f"highest sustained {_k(best.offered)}/s", color="green")
    ax.text(50.5, top * 0.03, "target 50k/s", color="grey")
    ax.set_xlabel("offered load, thousand commands/s")
    ax.set_ylabel("achieved, thousand commands/s")
    ax.set_title("Pipeline throughput (open loop)")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    bottom = np.zeros(len(steps))
    pos = np.arange(len(steps))
    for role in CPU_ROLES:
        vals = np.array([s.cpu.get(role, 0.0) for s in steps])
        bx.bar(pos, vals, bottom=bottom, label=role)
        bottom += vals
    bx.bar(pos, [s.others for s in steps], bottom=bottom, label="others", color="lightgrey", hatch="//")
    ncpu = os.cpu_count() or 1
    bx.axhline(100 * ncpu, color="k", lw=1, ls="--")
    bx.text(-0.4, 100 * ncpu + 3, f"{ncpu} cores = {100 * ncpu}%")
    bx.set_ylim(0, 100 * ncpu * 1.12)
    bx.set_xticks(pos, [_k(s.offered) for s in steps])
    bx.set_xlabel("offered load, commands/s")
    bx.set_ylabel("CPU, % of one core")
    bx.set_title("Where the CPU goes, per step")
    bx.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(out / "pipeline.png", dpi=110)

    fig = Figure(figsize=(13, 5))
    ax, bx = fig.subplots(1, 2)
    nines = np.linspace(0.0, 4.0, 81)
    pcts = 100 * (1 - 10 ** (-nines))
    for step in run.latency:
        for attr, what, style in (("ack_ns", "ack", "-"), ("event_ns", "first event", "--")):
            values = np.array(latencies_ms(step.results, attr, SETTLE_S))
            if len(values):
                ax.plot(nines, np.percentile(values, pcts), style, label=f"{_k(step.offered)}/s, to {what}")
    ax.set_xticks([0, 1, 2, 3, 4], ["0%", "90%", "99%", "99.9%", "99.99%"])
    ax.set_yscale("log")
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency from scheduled send, ms")
    ax.set_title("Latency distribution, constant-rate open loop")
    ax.axhline(2, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    for key, style in (("p50", "o-"), ("p99", "s-"), ("max", "^:")):
        bx.plot(x, [max(1e-3, s.ack_pct.get(key, 0.0)) for s in steps], style, label=f"ack {key}")
    bx.set_yscale("log")
    bx.set_xlabel("offered load, thousand commands/s")
    bx.set_ylabel("ms")
    bx.set_title("Acknowledgement latency per throughput step")
    bx.legend(fontsize=8)
    bx.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(out / "pipeline-latency.png", dpi=110)
