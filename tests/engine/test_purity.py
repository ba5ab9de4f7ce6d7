"""The engine core is sans-I/O: its modules import no networking, clock, randomness, environment or threads.

Its output must be a pure function of the journal (see engine.core), so the ban is checked on the source itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE_MODULES = [
    "engine/book.py",
    "engine/matching.py",
    "engine/accounts.py",
    "engine/core.py",
    "engine/snapshot.py",
]
BANNED = {"zmq", "redis", "asyncio", "socket", "time", "random", "uuid", "os", "threading", "datetime"}


def banned_imports(source: str) -> list[str]:
    """The banned top-level modules that ``source`` imports (``import x.y``, ``from x.y import z``, anywhere in
    the file, including inside functions and under TYPE_CHECKING)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            names = [node.module]
        else:
            continue
        found += [name for name in names if name.split(".")[0] in BANNED]
    return found


@pytest.mark.parametrize("module", CORE_MODULES)
def test_engine_core_module_imports_no_io_clock_or_randomness(module: str) -> None:
    assert banned_imports((ROOT / module).read_text()) == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import os", ["os"]),
        ("import os.path", ["os.path"]),
        ("from time import monotonic_ns", ["time"]),
        ("import json, random as r", ["random"]),
        ("def f():\n    import zmq.asyncio\n", ["zmq.asyncio"]),
        ("from datetime import datetime", ["datetime"]),
        ("from . import time", []),  # a relative import names a module of this package
        ("import timeit\nfrom hashlib import sha256", []),
    ],
)
def test_banned_imports_finds_every_form_of_import(source: str, found: list[str]) -> None:
    assert banned_imports(source) == found
