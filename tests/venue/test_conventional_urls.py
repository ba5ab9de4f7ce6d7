"""The start command takes the conventional REDIS_URL, DATABASE_URL and MONGODB_URL as the existing servers to use
(./mercury's conventional_urls, run here as the script runs it: bash with set -euo pipefail); Mercury's own
settings win when both are set, and nothing is exported for a name that is not set."""

from __future__ import annotations

import os
import subprocess

from deploy.procfile import ROOT

NAMES = ("MERCURY_REDIS_URL", "MERCURY_POSTGRES_URL", "MERCURY_MONGODB_URL")
CONVENTIONAL = ("REDIS_URL", "DATABASE_URL", "MONGODB_URL")


def exported(env: dict[str, str]) -> dict[str, str | None]:
    script = (ROOT / "mercury").read_text()
    start = script.index("conventional_urls() {")
    function = script[start : script.index("\n}\n", start) + 3]
    show = "".join(f'echo "{n}=${{{n}-<unset>}}"\n' for n in NAMES)
    clean = {k: v for k, v in os.environ.items() if k not in NAMES + CONVENTIONAL}
    out = subprocess.run(["bash", "-c", f"set -euo pipefail\n{function}\nconventional_urls\n{show}"],
                         env={**clean, **env}, capture_output=True, text=True, check=True).stdout  # fmt: skip
    values = dict(line.split("=", 1) for line in out.splitlines())
    return {n: None if values[n] == "<unset>" else values[n] for n in NAMES}


def test_the_conventional_names_name_the_servers_to_use() -> None:
    env = {"REDIS_URL": "redis://r:6379/0", "DATABASE_URL": "postgresql://u@p/db", "MONGODB_URL": "mongodb://m/x"}
    assert exported(env) == {"MERCURY_REDIS_URL": "redis://r:6379/0", "MERCURY_POSTGRES_URL": "postgresql://u@p/db",
                             "MERCURY_MONGODB_URL": "mongodb://m/x"}  # fmt: skip


def test_mercurys_own_settings_win_and_unset_names_stay_unset() -> None:
    env = {"REDIS_URL": "redis://r:6379/0", "MERCURY_REDIS_URL": "redis://mine:6379/1"}
    assert exported(env) == {"MERCURY_REDIS_URL": "redis://mine:6379/1", "MERCURY_POSTGRES_URL": None,
                             "MERCURY_MONGODB_URL": None}  # fmt: skip
