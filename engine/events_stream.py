"""The events stream: every event the engine emitted, in out_seq order, for consumers that must see all of them.

One entry per published batch; its id is ``<first out_seq>-0`` and its field ``b`` holds a msgpack list of events
(wire.codec.decode_events). The same bytes go out on the ZMQ PUB topic ``x/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import redis

from wire import keys
from wire.codec import decode_events
from wire.events import Event
from wire.streams import entries_from, last_entry


def last_out_seq(r: redis.Redis, key: str) -> int:
    blob = last_entry(r, key)
    return 0 if blob is None else decode_events(blob)[-1].out_seq


def read_events(r: redis.Redis, key: str, after: int = 0) -> Iterator[Event]:
    """Every event with out_seq > ``after``, in order."""
    for blob in entries_from(r, key, after + 1):
        for event in decode_events(blob):
            if event.out_seq > after:
                yield event


def stored_snapshot(r: redis.Redis, shard: str) -> bytes | None:
    """The newest engine snapshot (engine.snapshot format), stored with the events it follows."""
    return cast(bytes | None, r.get(keys.snapshot(shard)))
