"""The journal: a Redis Stream of command batches, the single source of truth of the venue.

One stream entry per batch; its id is ``<first_in_seq>-0`` and its one field ``b`` holds a msgpack
``JournalBatch`` (wire.codec). Because ids are explicit, Redis itself refuses an entry whose id is not above the
stream's last one: two sequencers writing one journal, or a sequencer with a stale ``in_seq``, fail loudly
instead of interleaving.
"""

from __future__ import annotations

from collections.abc import Iterator

import redis

from wire.codec import JournalBatch, decode_batch
from wire.streams import FIELD, StreamAppender, entries_from, entry_id, last_entry, xrevrange


def first_seq_of(entry: bytes | str) -> int:
    text = entry.decode() if isinstance(entry, bytes) else entry
    return int(text.split("-", 1)[0])


class Journal:
    """Reads and writes one engine shard's journal stream (synchronous redis-py)."""

    def __init__(self, r: redis.Redis, key: str) -> None:
        self.r = r
        self.key = key
        self._appender = StreamAppender(r)

    def append(self, first_in_seq: int, blob: bytes) -> None:
        """One round trip; raises redis.ResponseError if ``first_in_seq`` is not past the stream's end."""
        self._appender.append(self.key, [(first_in_seq, blob)])

    def last_batch(self) -> JournalBatch | None:
        blob = last_entry(self.r, self.key)
        return None if blob is None else decode_batch(blob)

    def last_in_seq(self) -> int:
        batch = self.last_batch()
        return 0 if batch is None else batch.first_in_seq + len(batch.cmds) - 1

    def tail(self, commands: int, chunk: int = 512) -> Iterator[JournalBatch]:
        """Batches from the end backwards until at least ``commands`` commands were seen (or the start)."""
        seen = 0
        upper = "+"
        while seen < commands:
            entries = xrevrange(self.r, self.key, upper, "-", count=chunk)
            if not entries:
                return
            for _, fields in entries:
                batch = decode_batch(fields[FIELD])
                seen += len(batch.cmds)
                yield batch
            oldest = first_seq_of(entries[-1][0])
            if oldest <= 1:
                return
            upper = entry_id(oldest - 1)

    def read_from(self, in_seq: int) -> Iterator[JournalBatch]:
        """Every batch that holds a command with sequence >= ``in_seq``, in order (the first may start before it)."""
        for blob in entries_from(self.r, self.key, in_seq):
            yield decode_batch(blob)
