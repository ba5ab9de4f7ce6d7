"""Paging through Mercury's Redis Streams, whose entry ids are ``<first sequence of the entry>-0``.

Runs on a redis client the caller owns (this package opens no connection itself). Both the journal (entries of
commands keyed by in_seq) and the events stream (entries of events keyed by out_seq) are read this way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import redis

FIELD = b"b"
Entry = tuple[bytes, dict[bytes, bytes]]


def xrange(r: redis.Redis, key: str, low: str, high: str = "+", count: int | None = None) -> list[Entry]:
    """XRANGE with the types a bytes-returning client really gives (redis-py's own stubs are looser)."""
    return cast(list[Entry], r.xrange(key, low, high, count=count))


def xrevrange(r: redis.Redis, key: str, high: str = "+", low: str = "-", count: int | None = None) -> list[Entry]:
    return cast(list[Entry], r.xrevrange(key, high, low, count=count))


def entry_id(first_seq: int) -> str:
    return f"{first_seq}-0"


def entries_from(r: redis.Redis, key: str, seq: int, chunk: int = 256) -> Iterator[bytes]:
    """The payloads of every entry that may hold sequence numbers >= ``seq``, in order: the entry holding ``seq``
    (the last one whose id is <= seq) and everything after it."""
    start = entry_id(seq)
    before = xrevrange(r, key, start, "-", count=1)
    if before:
        start = before[0][0].decode()
    lower = start
    while True:
        entries = xrange(r, key, lower, "+", count=chunk)
        for _, fields in entries:
            yield fields[FIELD]
        if len(entries) < chunk:
            return
        lower = "(" + entries[-1][0].decode()


def last_entry(r: redis.Redis, key: str) -> bytes | None:
    entries = xrevrange(r, key, "+", "-", count=1)
    return entries[0][1][FIELD] if entries else None
