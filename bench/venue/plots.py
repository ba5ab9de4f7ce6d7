"""The figures of venue-latency.md: latency percentiles per hop, throughput over time, enqueue vs processed (the
sequencer's journaled in_seq against the engine's progress) and CPU per process per step."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from bench.venue.session import SAMPLE_S

if TYPE_CHECKING:
    from bench.latency import LatencyRun

BIN_S = 0.5


def _rate(times_ns: npt.NDArray[np.int64], t0: int, t1: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    edges = np.arange(t0, t1 + int(BIN_S * 1e9), int(BIN_S * 1e9))
    counts, _ = np.histogram(times_ns, bins=edges)
    return (edges[:-1] - t0) / 1e9, counts / BIN_S


def latency_figure(run: LatencyRun, out: Path) -> str:
    shown = [s for s in run.steps if s.label.startswith("latency")]
    best = run.best()
    if best is not None and best not in shown:
        shown.append(best)
    fig = Figure(figsize=(12, 1.2 + 0.9 * len(shown) * 5))
    axes = fig.subplots(len(shown), 1, squeeze=False)[:, 0]
    for ax, step in zip(axes, shown, strict=True):
        hops = [h for h in run.hops[step.label].values() if h.count]
        y = np.arange(len(hops))
        for k, (q, colour) in enumerate(((50, "tab:green"), (99, "tab:orange"), (99.9, "tab:red"))):
            ax.barh(y + (k - 1) * 0.27, [h.ms(q) for h in hops], height=0.26, color=colour, label=f"p{q:g}")
        ax.set_yticks(y, [h.name for h in hops])
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("ms (log)")
        ax.set_title(f"Latency per hop at {step.rate:,.0f} orders/s ({step.label})")
        ax.grid(axis="x", alpha=0.3, which="both")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "venue-latency.png", dpi=100)
    return "venue-latency.png"


def throughput_figure(run: LatencyRun, out: Path) -> str:
    assert run.session is not None
    req = run.session.requests()
    p = run.session.progress
    at = np.frombuffer(p.at, dtype=np.int64)
    t0 = int(min(req.sched.min(), at.min())) if len(at) and len(req.sched) else 0
    t1 = int(max(req.resp.max(), at.max())) if len(at) and len(req.resp) else 1
    fig = Figure(figsize=(13, 5))
    ax = fig.subplots()
    for times, label in ((req.sched, "offered (due)"), (req.sent[req.sent > 0], "written by the load"),
                         (req.resp[req.ok()], "answered 200")):  # fmt: skip
        x, y = _rate(times, t0, t1)
        ax.plot(x, y, label=label, lw=1)
    x = (at - t0) / 1e9
    for values, label in ((p.journaled, "journaled (sequencer in_seq)"), (p.engine, "applied (engine heartbeat)")):
        v = np.frombuffer(values, dtype=np.int64).astype(float)
        k = max(1, int(BIN_S / SAMPLE_S))  # smoothed over BIN_S like the load's own rates
        ax.plot(
            x[1:],
            np.convolve(np.diff(v) / SAMPLE_S, np.ones(k) / k, mode="same"),
            label=label + ", commands/s",
            lw=1,
            alpha=0.8,
        )
    for s in run.steps:
        ax.axvspan((s.t0 - t0) / 1e9, (s.t1 - t0) / 1e9, color="grey" if s.sustained else "red", alpha=0.07)
        ax.text((s.t0 - t0) / 1e9, 0, s.label, fontsize=7, rotation=90, va="bottom")
    ax.set_xlabel("s since the run's first request")
    ax.set_ylabel("per second")
    ax.set_title("Throughput over time (red band: a step not sustained)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "venue-throughput.png", dpi=100)
    return "venue-throughput.png"


def backlog_figure(run: LatencyRun, out: Path) -> str:
    assert run.session is not None
    p = run.session.progress
    at = np.frombuffer(p.at, dtype=np.int64)
    first = min((s.t0 for s in run.steps), default=int(at[0]) if len(at) else 0)
    keep = at >= first - 1_000_000_000
    x = (at[keep] - first) / 1e9
    journaled = np.frombuffer(p.journaled, dtype=np.int64)[keep].astype(float)
    engine = np.frombuffer(p.engine, dtype=np.int64)[keep].astype(float)
    out_seq = np.frombuffer(p.engine_out, dtype=np.int64)[keep].astype(float)
    pg = np.frombuffer(p.pg, dtype=np.int64)[keep].astype(float)
    mongo = np.frombuffer(p.mongo, dtype=np.int64)[keep].astype(float)
    fig = Figure(figsize=(13, 7))
    ax, bx = fig.subplots(2, 1, sharex=True)
    if len(x) > 1:
        smooth = max(1, int(0.5 / SAMPLE_S))
        for values, label in ((journaled, "enqueued: journaled by the sequencer"),
                              (engine, "processed: applied by the engine")):  # fmt: skip
            rate = np.convolve(np.diff(values) / SAMPLE_S, np.ones(smooth) / smooth, mode="same")
            ax.plot(x[1:], rate, label=label, lw=1)
        bx.plot(x, journaled - engine, label="engine backlog (commands journaled, not applied)", lw=1)
        bx.plot(x, np.maximum(out_seq - pg, 0), label="PostgreSQL persister backlog (events)", lw=1)
        bx.plot(x, np.maximum(out_seq - mongo, 0), label="MongoDB persister backlog (events)", lw=1)
    for s in run.steps:
        for a in (ax, bx):
            a.axvspan((s.t0 - first) / 1e9, (s.t1 - first) / 1e9, color="grey" if s.sustained else "red", alpha=0.07)
    ax.set_ylabel("commands/s")
    ax.set_title("Enqueued vs processed: the sequencer's journaled in_seq and the engine's heartbeat, per second")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    bx.set_yscale("symlog", linthresh=10)
    bx.set_ylabel("backlog")
    bx.set_xlabel("s since the first step")
    bx.legend(fontsize=8, loc="upper left")
    bx.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "venue-backlog.png", dpi=100)
    return "venue-backlog.png"


def cpu_figure(run: LatencyRun, out: Path) -> str:
    steps = run.steps
    names: list[str] = []
    for s in steps:
        names += [n for n in s.cpu if n not in names]
    names.sort(key=lambda n: -max(s.cpu.get(n, 0.0) for s in steps))
    fig = Figure(figsize=(13, 5.5))
    ax = fig.subplots()
    pos = np.arange(len(steps))
    bottom = np.zeros(len(steps))
    colours = [f"C{i % 10}" for i in range(len(names))]
    for name, colour in zip(names, colours, strict=True):
        values = np.array([s.cpu.get(name, 0.0) for s in steps])
        ax.bar(pos, values, bottom=bottom, label=name, color=colour, hatch="//" if name.startswith("bench") else "")
        bottom += values
    cores = os.cpu_count() or 1
    ax.axhline(100 * cores, color="k", ls="--", lw=1)
    ax.text(-0.4, 100 * cores + 3, f"{cores} cores")
    ax.set_xticks(pos, [s.label for s in steps], rotation=20, fontsize=8)
    ax.set_ylabel("% of one core")
    ax.set_title("CPU per process, per step (hatched: the load and the observers)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(out / "venue-cpu.png", dpi=100)
    return "venue-cpu.png"


def plot(run: LatencyRun, out: Path) -> list[str]:
    return [latency_figure(run, out), throughput_figure(run, out), backlog_figure(run, out), cpu_figure(run, out)]
