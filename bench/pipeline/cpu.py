"""CPU accounting from /proc: time per role and thread, and how busy the whole machine is."""

from __future__ import annotations

import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _ticks(stat_path: str, children: bool = False) -> int:
    with open(stat_path, "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks + int(fields[13]) + int(fields[14]) if children else ticks  # + cutime + cstime (reaped children)


def _tree_ticks(pid: int) -> int:
    """A process with its children, live (e.g. Redis's AOF rewrite) or reaped."""
    ticks = _ticks(f"/proc/{pid}/stat", children=True)
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(k) for k in f.read().split()]
    except FileNotFoundError:
        kids = []
    for kid in kids:
        try:
            ticks += _tree_ticks(kid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return ticks


def _idle_seconds() -> float:
    """Idle time of all CPUs together since boot (/proc/uptime). The kernel keeps idle time exactly, while the
    busy fields of /proc/stat are sampled at the tick, which a tickless guest under-counts badly."""
    with open("/proc/uptime") as f:
        return float(f.read().split()[1])


Sample = tuple[float, dict[str, int], float]  # (monotonic time, ticks per role, idle seconds)


class CpuMeter:
    """CPU time per role: the sequencer's and the engine's threads apart, Redis, the load, this process."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def _split(self, role: str, pid: int, out: dict[str, int]) -> None:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            return
        for tid in tids:
            path = f"/proc/{pid}/task/{tid}"
            try:
                with open(path + "/comm") as f:
                    comm = f.read().strip()
                ticks = _ticks(path + "/stat")
            except (FileNotFoundError, ProcessLookupError):
                continue
            if comm.startswith("ZMQbg"):
                name = f"{role} zmq I/O"
            elif int(tid) == pid:
                name = "engine matching" if role == "engine" else role
            else:
                name = f"{role} writer" if role == "engine" else f"{role} other"
            out[name] = out.get(name, 0) + ticks

    def sample(self) -> Sample:
        out: dict[str, int] = {}
        for role, pid in self.pids.items():
            if role in ("sequencer", "engine"):
                self._split(role, pid, out)
            elif role.startswith("load"):
                self._split("load", pid, out)
            else:
                try:  # Redis with its children (AOF rewrites); this script without its own (the venue, the load)
                    ticks = _tree_ticks(pid) if role == "redis" else _ticks(f"/proc/{pid}/stat")
                except FileNotFoundError:
                    continue
                out[role] = out.get(role, 0) + ticks
        return time.monotonic(), out, _idle_seconds()

    @staticmethod
    def percent(a: Sample, b: Sample) -> tuple[dict[str, float], float]:
        """Per role, % of one core over the interval; and the whole machine's busy % (of all cores)."""
        seconds = b[0] - a[0]
        roles = {k: 100.0 * (v - a[1].get(k, 0)) / CLK_TCK / seconds for k, v in b[1].items()}
        return roles, _busy_percent(seconds, b[2] - a[2])


def _busy_percent(seconds: float, idle: float) -> float:
    cpus = os.cpu_count() or 1
    return max(0.0, min(100.0, 100.0 * (1.0 - idle / (seconds * cpus))))


def background_busy(seconds: float = 2.0) -> float:
    t, idle = time.monotonic(), _idle_seconds()
    time.sleep(seconds)
    return _busy_percent(time.monotonic() - t, _idle_seconds() - idle)
