"""Figures and formatting shared by the report's sections: CPU roles, per-command CPU, the engine-core figure."""

from __future__ import annotations

import re

from bench.pipeline.constants import REPO, REPORTS
from bench.pipeline.run import Run
from bench.pipeline.steps import StepResult

CPU_ROLES = (
    "sequencer",
    "sequencer zmq I/O",
    "engine matching",
    "engine writer",
    "engine zmq I/O",
    "redis",
    "load",
    "load zmq I/O",
    "bench (monitor)",
)


def _k(rate: float) -> str:
    return f"{rate / 1000:g}k"


def _ms(v: float) -> str:
    return f"{v:.2f}" if v < 10 else f"{v:,.0f}"


def per_command_us(step: StepResult) -> dict[str, float]:
    """CPU microseconds per acknowledged command, by role, over the step's window."""
    rate = max(1.0, step.answered_rate)
    return {role: pct * 1e4 / rate for role, pct in step.cpu.items()}


def _group_us(us: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in us.items() if k.startswith(prefix))


def engine_core_figure() -> tuple[float, str] | None:
    """The engine core's decode + apply rate for 1 symbol (commands/s) from bench/reports/engine-core.md."""
    path = REPORTS / "engine-core.md"
    if not path.exists():
        return None
    m = re.search(r"\*\*1 symbol\*\*: decode \+ apply \*\*([\d,.]+)(k?) commands/s\*\*", path.read_text())
    if m is None:
        return None
    value = float(m.group(1).replace(",", "")) * (1000 if m.group(2) else 1)
    return value, m.group(0).replace("*", "")


def _compare(a: float, b: float) -> str:
    if a > 1.1 * b:
        return "more than"
    return "as much as" if a >= 0.9 * b else "less than"


def _source(path: str) -> str:
    try:
        return (REPO / path).read_text()
    except OSError:
        return ""


def _plumbing(run: Run, starts: str) -> float:
    for p in run.plumbing:
        if p.name.startswith(starts):
            return p.us
    return 0.0
