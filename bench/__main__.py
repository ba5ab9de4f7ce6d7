"""``python -m bench``: the whole-venue benchmarks in one command.

    python -m bench latency [--quick]          latency per hop and the highest sustained rate (a private venue)
    python -m bench load --url URL --rate R    signed orders at a fixed rate against a running venue (or --private)
    python -m bench chaos                      kill -9 each process of a private venue under load; nothing lost
    python -m bench all [--quick]              latency, then load --private, then chaos

Each subcommand's ``--help`` lists its options. The component benchmarks keep their own commands
(``python -m bench.pipeline``, ``bench.gateway``, ...; bench/README.md).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from bench import chaos, latency, load


def _commands() -> dict[str, Callable[[Sequence[str] | None], int]]:
    return {"latency": latency.main, "load": load.main, "chaos": chaos.main}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    name, rest = args[0], args[1:]
    commands = _commands()
    if name == "all":
        quick = ["--quick"] if "--quick" in rest else []
        codes = [commands["latency"](quick), commands["load"](["--private", *quick]), commands["chaos"](quick)]
        return max(codes)
    if name not in commands:
        print(f"unknown command {name!r}: one of {', '.join(commands)}, all", file=sys.stderr)
        return 2
    return commands[name](rest)


if __name__ == "__main__":
    sys.exit(main())
