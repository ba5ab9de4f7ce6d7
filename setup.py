"""Build: the engine's hot modules are compiled with mypyc (a compiler for type-annotated Python, part of mypy).

The sources stay plain, fully typed Python and run as they are when ``MERCURY_PURE_PYTHON=1`` (nothing is
compiled). Compiled, the same code applies about 1.5x as many commands per second with accounts and risk on
(bench/reports/engine-core.md). ``pip install -e .`` builds the extensions next to the sources; after editing
one of these modules, ``./mercury test`` and ``./mercury start`` rebuild them (``engine/__init__.py`` refuses to
run a compiled module older than its source).
"""

from __future__ import annotations

import os

from setuptools import setup

COMPILED = ["engine/context.py", "engine/book.py", "engine/accounts.py", "engine/matching.py", "engine/core.py"]

ext_modules = []
if not os.environ.get("MERCURY_PURE_PYTHON"):
    from mypyc.build import mypycify

    ext_modules = mypycify(COMPILED, opt_level="3")

setup(ext_modules=ext_modules)
