"""Prometheus file-based service discovery targets from the Procfile's MERCURY_METRICS_PORT values.

``python -m deploy.targets`` writes two files, one target group per process (labels ``job``: its kind, ``process``:
its Procfile name):

- ``deploy/prometheus/targets/mercury.json``: 127.0.0.1, for a Prometheus next to ``./mercury start``;
- ``deploy/prometheus/compose-targets/mercury.json``: the Compose service names (docker-compose.yml).

Prometheus re-reads the files when they change, so a process added to the Procfile is scraped after a rerun
without a restart. ``--check`` exits 1 when a committed file is not what the Procfile gives.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deploy import procfile

PROMETHEUS = Path(__file__).resolve().parent / "prometheus"
LOCAL = PROMETHEUS / "targets" / "mercury.json"
COMPOSE = PROMETHEUS / "compose-targets" / "mercury.json"


def groups(processes: list[procfile.Process], host: str | None) -> list[dict[str, object]]:
    """One group per exporting process; ``host`` None means each process's own name (a Compose service)."""
    out: list[dict[str, object]] = []
    for p in processes:
        if p.job is None:
            continue
        out.append({"targets": [f"{host or p.name}:{p.metrics_port}"], "labels": {"job": p.job, "process": p.name}})
    return out


def render(processes: list[procfile.Process], host: str | None) -> str:
    return json.dumps(groups(processes, host), indent=2) + "\n"


def outputs() -> dict[Path, str]:
    processes = procfile.load()
    return {LOCAL: render(processes, "127.0.0.1"), COMPOSE: render(processes, None)}


def _shown(path: Path) -> str:
    return str(path.relative_to(procfile.ROOT)) if path.is_relative_to(procfile.ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed targets file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {_shown(path)}")
    for path in stale:
        print(f"{_shown(path)} is out of date: run python -m deploy.targets", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
