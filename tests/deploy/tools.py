"""The command-line tools the deploy checks run. A missing tool fails the test, never skips it: a check that did not
run is not a check (.ci/run installs promtool with Debian's prometheus and builds kustomize into var/bin)."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

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


# PyYAML (installed with kubernetes-validate and schemathesis) ships no type hints and types-PyYAML is not a dev
# dependency, so it is imported untyped rather than silencing mypy for the whole module
_yaml: Any = importlib.import_module("yaml")


def load_yaml(path: Path) -> Any:
    return _yaml.safe_load(path.read_text())


def load_yaml_text(text: str) -> Any:
    return _yaml.safe_load(text)


def load_yaml_all(text: str) -> list[Any]:
    return [doc for doc in _yaml.safe_load_all(text) if doc is not None]


def dump_yaml(data: Any) -> str:
    text: str = _yaml.safe_dump(data, sort_keys=False)
    return text
