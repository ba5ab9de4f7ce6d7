"""What the persistence commands share: connecting to PostgreSQL, and turning an outcome into an exit code."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

import asyncpg


async def connect(url: str) -> asyncpg.Connection:
    """A connection, or ConnectionError naming the URL (no host, refused, bad credentials, timeout)."""
    try:
        return await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        raise ConnectionError(f"cannot reach PostgreSQL at {url}: {exc}") from None


def run_command(
    work: Coroutine[Any, Any, str], refused: tuple[type[Exception], ...], unavailable: tuple[type[Exception], ...]
) -> int:
    """Run a command's coroutine and print its result: exit 0; 1 if it was refused (the reason on stderr); 2 if
    it could not work (PostgreSQL unreachable, a setting missing)."""
    cannot_work: tuple[type[Exception], ...] = (ConnectionError, *unavailable)
    try:
        print(asyncio.run(work))
    except cannot_work as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
