"""What a benchmark ran on: CPU, cores, memory, Python build, msgspec, kernel, and the git commit of the code.

Every benchmark report starts with ``machine_markdown()`` so that figures are never quoted without the machine
and the code that produced them. Nothing here is timed; reading /proc and running git take a few milliseconds.
"""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from engine import COMPILED_MODULES

REPO = Path(__file__).resolve().parent.parent
_MAX_LISTED = 12  # changed files listed by name in a report; the rest are counted


@dataclass(frozen=True, slots=True)
class GitState:
    commit: str  # short hash of HEAD, or "unknown" outside a git checkout
    dirty: bool  # tracked files differ from HEAD (untracked files do not count)
    changed: tuple[str, ...]  # the tracked files that differ
    untracked: int  # number of untracked, not ignored files


def _git(*args: str, repo: Path = REPO) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(repo: Path = REPO) -> GitState:
    commit = (_git("rev-parse", "--short", "HEAD", repo=repo) or "unknown").strip()
    status = _git("status", "--porcelain", repo=repo) or ""
    changed: list[str] = []
    untracked = 0
    for line in status.splitlines():
        if line.startswith("??"):
            untracked += 1
        elif len(line) > 3:
            changed.append(line[3:])
    return GitState(commit=commit, dirty=bool(changed), changed=tuple(changed), untracked=untracked)


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields from /proc/cpuinfo (empty where there is no such file)."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            break  # end of the first processor's block
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def _mem_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def _python_build() -> str:
    config = str(sysconfig.get_config_var("CONFIG_ARGS") or "")
    flags = [name for name, opt in (("PGO", "--enable-optimizations"), ("LTO", "--with-lto")) if opt in config]
    return ", ".join(flags) if flags else "no PGO/LTO flags in CONFIG_ARGS"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def engine_build() -> str:
    """Whether the engine's hot modules run compiled (setup.py) or as Python sources."""
    files = [str(importlib.import_module(f"engine.{name}").__file__) for name in COMPILED_MODULES]
    compiled = sum(f.endswith(".so") for f in files)
    if compiled == len(files):
        return f"compiled with mypyc {_version('mypy')} ({', '.join(COMPILED_MODULES)})"
    if not compiled:
        return "pure Python (MERCURY_PURE_PYTHON: nothing compiled)"
    return f"mixed: {compiled} of {len(files)} hot modules compiled"


def machine_info(repo: Path = REPO) -> dict[str, str]:
    """Machine, interpreter and code details as label -> value, in display order."""
    cpu = _cpuinfo()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    git = git_state(repo)
    if git.dirty:
        listed = ", ".join(git.changed[:_MAX_LISTED])
        more = f" and {len(git.changed) - _MAX_LISTED} more" if len(git.changed) > _MAX_LISTED else ""
        tree = f"dirty: {len(git.changed)} tracked file(s) differ from the commit ({listed}{more})"
    else:
        tree = "clean (no tracked file differs from the commit)"
    if git.untracked:
        tree += f"; {git.untracked} untracked file(s)"
    return {
        "CPU": cpu.get("model name", platform.processor() or "unknown")
        + (" (virtual machine: the hypervisor flag is set)" if "hypervisor" in cpu.get("flags", "").split() else ""),
        "CPU MHz (reported)": cpu.get("cpu MHz", "unknown"),
        "cores": f"{os.cpu_count()} logical ({cpu.get('cpu cores', '?')} per package), {usable} usable by this process",
        "memory": _mem_total(),
        "kernel": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()} ({_python_build()})",
        "msgspec": _version("msgspec"),
        "engine build": engine_build(),
        "executable": sys.executable,
        "git commit": git.commit,
        "working tree": tree,
    }


def machine_markdown(repo: Path = REPO) -> str:
    """``machine_info`` as a two-column markdown table."""
    rows = ["| | |", "| --- | --- |"]
    for key, value in machine_info(repo).items():
        rows.append(f"| {key} | {value.replace('|', '/')} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(machine_markdown(), end="")
