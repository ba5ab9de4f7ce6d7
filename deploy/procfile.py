"""The Procfile as data: every deployment file (Prometheus targets, Compose, Kubernetes) is checked against it, so
that a process added to or changed in the Procfile cannot be forgotten elsewhere."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"

# The Python module a Mercury process runs -> the Prometheus job of its kind. Processes of one kind (http-a, http-b)
# share a job, so a scaled-out process shows up in the same series with its own instance label.
JOBS = {
    "sequencer": "sequencer",
    "engine": "engine",
    "persistence.postgres": "pg-persister",
    "persistence.mongo": "mongo-persister",
    "gateways.http": "http",
    "feeds": "feed",
    "gateways.fix": "fix",
    "research.serve": "research",
}

_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass(frozen=True)
class Process:
    name: str
    env: dict[str, str]
    argv: list[str]

    @property
    def module(self) -> str | None:
        """The module of ``python -m <module>``; None for the other commands (bin/redis-local, ...)."""
        if len(self.argv) >= 3 and self.argv[0] == "python" and self.argv[1] == "-m":
            return self.argv[2]
        return None

    @property
    def metrics_port(self) -> int | None:
        port = self.env.get("MERCURY_METRICS_PORT")
        return int(port) if port else None

    @property
    def job(self) -> str | None:
        """The Prometheus job of a process that exports metrics, None for one that does not."""
        if self.metrics_port is None or self.module is None:
            return None
        return JOBS.get(self.module, self.module.replace(".", "-"))


def parse(text: str) -> list[Process]:
    processes = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, command = line.partition(":")
        words = shlex.split(command)
        env: dict[str, str] = {}
        while words and _ENV.match(words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        processes.append(Process(name.strip(), env, words))
    return processes


def load(path: Path = PROCFILE) -> list[Process]:
    return parse(path.read_text())
