"""The command-line tools the deploy checks run. A missing tool fails the test, never skips it: a check that did not
run is not a check (.ci/run installs promtool with Debian's prometheus and builds kustomize into var/bin)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from deploy.procfile import ROOT


def tool(name: str) -> str:
    for candidate in (ROOT / "var" / "bin" / name, Path("/usr/bin") / name):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} is not installed: .ci/run installs it (see tests/deploy/tools.py)"
    return found


def run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
