"""``python -m sim``: run the market simulator (``python -m sim --help`` lists its options).

Exit codes: 0 stopped (Ctrl-C, SIGTERM or the end of ``--duration``), 1 the venue or the accounts could not be set
up in time, 2 a configuration it cannot run (an unknown symbol, a bad option).
"""

from __future__ import annotations

import asyncio
import logging
import sys

from sim.accounts import SetupError
from sim.config import ConfigError, parse
from sim.runner import main_async
from wire.config import load_settings
from wire.errors import ConfigError as SettingsError


def say(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")  # fmt: skip
    try:
        settings = load_settings()
        config = parse(sys.argv[1:] if argv is None else argv, settings)
        return asyncio.run(main_async(config, settings, say))
    except (ConfigError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
