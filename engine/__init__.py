"""The matching engine: a pure core (book, matching, accounts, core) and its process (service).

The core's modules are compiled with mypyc when the project is installed (setup.py). Python imports a compiled
module in preference to its source, so a compiled module older than its source would run code that is no
longer in the repository: importing the engine refuses that, loudly, instead of testing or running stale code.
"""

from __future__ import annotations

from pathlib import Path

COMPILED_MODULES = ("context", "book", "accounts", "matching", "core")


def _refuse_stale_builds() -> None:
    here = Path(__file__).resolve().parent
    for name in COMPILED_MODULES:
        source = here / f"{name}.py"
        for built in here.glob(f"{name}.*.so"):
            if built.stat().st_mtime < source.stat().st_mtime:
                raise ImportError(
                    f"engine/{built.name} was compiled before engine/{source.name} last changed: rebuild it with"
                    " `./mercury build` (or `pip install -e .`), or run the sources as they are with"
                    " `MERCURY_PURE_PYTHON=1 ./mercury build`, which removes the compiled modules"
                )


_refuse_stale_builds()
