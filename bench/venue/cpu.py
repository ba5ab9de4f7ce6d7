"""CPU time per process of the whole venue, from /proc.

Servers that fork workers (PostgreSQL's backends, nginx's worker, Redis's AOF rewrites) are counted with their
children; the Python services and FerretDB as the process itself (all its threads)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.pipeline.cpu import CLK_TCK, _ticks, _tree_ticks


@dataclass(frozen=True, slots=True)
class Watched:
    pid: int
    tree: bool  # count the process's children too


class ProcessCpu:
    """Samples the CPU ticks of named processes; ``percent`` turns two samples into % of one core per name."""

    def __init__(self, processes: dict[str, Watched]) -> None:
        self.processes = processes

    def sample(self) -> tuple[float, dict[str, int]]:
        ticks: dict[str, int] = {}
        for name, w in self.processes.items():
            try:
                ticks[name] = _tree_ticks(w.pid) if w.tree else _ticks(f"/proc/{w.pid}/stat")
            except (FileNotFoundError, ProcessLookupError):
                continue  # ended (a chaos kill, or stopped): it shows as absent, not as zero
        return time.monotonic(), ticks

    @staticmethod
    def percent(a: tuple[float, dict[str, int]], b: tuple[float, dict[str, int]]) -> dict[str, float]:
        seconds = max(b[0] - a[0], 1e-9)
        return {k: 100.0 * (v - a[1].get(k, v)) / CLK_TCK / seconds for k, v in b[1].items() if k in a[1]}
