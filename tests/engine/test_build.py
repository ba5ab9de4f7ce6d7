"""The engine's hot modules run compiled (setup.py, mypyc) unless MERCURY_PURE_PYTHON asks for the sources."""

from __future__ import annotations

import importlib
import os

import pytest

from engine import COMPILED_MODULES


@pytest.mark.parametrize("name", COMPILED_MODULES)
def test_engine_module_runs_as_built(name: str) -> None:
    module = importlib.import_module(f"engine.{name}")
    compiled = str(module.__file__).endswith(".so")
    assert compiled == (not os.environ.get("MERCURY_PURE_PYTHON")), module.__file__
