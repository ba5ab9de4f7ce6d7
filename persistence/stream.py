"""The events stream as a consumer that must apply every event exactly once sees it (the persisters).

A consumer stores, with what it wrote, the out_seq of the last event it applied and the id of the last stream entry
it applied (entries are applied whole). It resumes after that entry, so it neither misses nor repeats an event,
and it also passes entries that were quarantined (no event in them could be decoded).

Decoding is defensive: an entry that is not a list of events is salvaged event by event, and whatever cannot be
decoded becomes a ``Quarantined`` item with its bytes and the reason, for the consumer to store. Nothing is
dropped silently and nothing stops the consumer, except a gap: events missing from the stream (trimmed past the
consumer, or lost) cannot be recovered by reading on, so ``StreamGap`` is raised.

The registry (a Redis hash next to the stream, wire.keys.consumers) holds each consumer's confirmed out_seq; the
stream is trimmed only below the smallest of them, and never while no consumer is registered.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import cast

import msgspec
import redis.asyncio as aioredis

from wire import keys
from wire.codec import decode_events
from wire.errors import MalformedMessage, MercuryError
from wire.events import Event
from wire.streams import FIELD

_raw_list = msgspec.msgpack.Decoder(list[msgspec.Raw])
_one_event: msgspec.msgpack.Decoder[Event] = msgspec.msgpack.Decoder(Event)
_any = msgspec.msgpack.Decoder()

StreamReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]


class StreamGap(MercuryError):
    """Events between the consumer's position and the stream's next entry are missing."""


@dataclass(frozen=True, slots=True)
class Quarantined:
    stream_id: str
    out_seq: int | None  # None when not even that could be read
    payload: bytes
    reason: str


@dataclass(slots=True)
class Chunk:
    """Whole stream entries: their events in out_seq order, and what could not be decoded."""

    events: list[Event] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    stream_id: str = ""  # the last entry's id


def _peek_out_seq(raw: bytes) -> int | None:
    """An undecodable event's out_seq, if it is at least an array [tag, out_seq, ...]."""
    try:
        value = _any.decode(raw)
    except msgspec.DecodeError:
        return None
    if isinstance(value, list) and len(value) > 1 and isinstance(value[1], int):
        return value[1]
    return None


def decode_entry(stream_id: str, fields: dict[bytes, bytes], out: Chunk) -> None:
    """Append the entry's events to ``out.events`` and what cannot be decoded to ``out.quarantined``."""
    blob = fields.get(FIELD)
    if blob is None:
        payload = msgspec.msgpack.encode({k.decode(errors="replace"): v for k, v in fields.items()})
        out.quarantined.append(Quarantined(stream_id, None, payload, "entry has no 'b' field"))
        return
    try:
        out.events += decode_events(blob)
        return
    except MalformedMessage as exc:
        whole_reason = str(exc)
    try:
        raws = _raw_list.decode(blob)
    except (msgspec.DecodeError, msgspec.ValidationError):
        out.quarantined.append(Quarantined(stream_id, None, blob, whole_reason))
        return
    for raw in raws:  # salvage the good events of a partly bad entry
        try:
            out.events.append(_one_event.decode(raw))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            out.quarantined.append(Quarantined(stream_id, _peek_out_seq(bytes(raw)), bytes(raw), f"bad event: {exc}"))


class EventStream:
    """Reads whole entries of one shard's events stream after a position, checking that no event is missing."""

    def __init__(self, r: aioredis.Redis, shard: str) -> None:
        self.r = r
        self.key = keys.events(shard)
        self.stream_id = "0-0"  # the last entry read
        self.out_seq = 0  # the last event read

    def seek(self, stream_id: str, out_seq: int) -> None:
        self.stream_id, self.out_seq = stream_id, out_seq

    async def read(self, max_entries: int, block_ms: int | None) -> Chunk | None:
        """The next entries (at most ``max_entries``), waiting up to ``block_ms`` for one (None: not at all); None
        if none came."""
        reply = cast(StreamReply, await self.r.xread({self.key: self.stream_id}, count=max_entries, block=block_ms))
        if not reply:
            return None
        chunk = Chunk()
        for entry_id, fields in reply[0][1]:
            decode_entry(entry_id.decode(), fields, chunk)
        chunk.stream_id = reply[0][1][-1][0].decode()
        events = chunk.events
        if events and events[0].out_seq <= self.out_seq:  # only a hand-made stream repeats events
            events = chunk.events = [ev for ev in events if ev.out_seq > self.out_seq]
        expected = self.out_seq + 1
        for ev in events:
            if ev.out_seq != expected:
                if any(q.out_seq is None or q.out_seq == expected for q in chunk.quarantined):
                    expected = ev.out_seq  # the missing events are in what was quarantined
                else:
                    raise StreamGap(
                        f"{self.key}: events {expected}..{ev.out_seq - 1} are missing after entry {self.stream_id}"
                        " (trimmed past this consumer, or lost); rebuild this consumer's store from the start"
                    )
            expected += 1
        self.stream_id = chunk.stream_id
        if events:
            self.out_seq = events[-1].out_seq
        return chunk

    async def last_event(self) -> tuple[int, int]:
        """(out_seq, ts) of the stream's newest event, (0, 0) when it is empty or its last entry is not events."""
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await self.r.xrevrange(self.key, count=1))
        if not entries:
            return 0, 0
        chunk = Chunk()
        decode_entry(entries[0][0].decode(), entries[0][1], chunk)
        if not chunk.events:
            return 0, 0
        last = chunk.events[-1]
        return last.out_seq, last.ts

    async def event_ts(self, out_seq: int) -> int | None:
        """The stamp of event ``out_seq``, None if the stream does not hold it."""
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], await self.r.xrevrange(self.key, f"{out_seq}-0", "-", count=1)
        )
        if not entries:
            return None
        chunk = Chunk()
        decode_entry(entries[0][0].decode(), entries[0][1], chunk)
        return next((ev.ts for ev in chunk.events if ev.out_seq == out_seq), None)


class Registry:
    """The consumers that hold the events stream back from trimming, with the out_seq each has confirmed."""

    def __init__(self, r: aioredis.Redis, shard: str) -> None:
        self.r = r
        self.key = keys.consumers(shard)
        self.leases = keys.consumer_leases(shard)
        self.stream_key = keys.events(shard)

    async def confirm(self, consumer: str, out_seq: int, lease: float | None = None) -> None:
        """``consumer`` has applied every event up to ``out_seq`` (registers it when new). With ``lease`` (s) the
        registration lapses unless confirmed again within that time (a live reader); without, it stays until
        unregistered (a persister)."""
        if lease is None:
            await self.r.hset(self.key, consumer, out_seq)
            return
        until = time.time_ns() // 1_000_000 + int(lease * 1000)
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(self.key, consumer, out_seq)
        pipe.hset(self.leases, consumer, until)
        await pipe.execute()

    async def unregister(self, consumer: str) -> bool:
        await self.r.hdel(self.leases, consumer)
        return bool(await self.r.hdel(self.key, consumer))

    async def offsets(self) -> dict[str, int]:
        """The registered consumers' offsets; lapsed live registrations are removed first."""
        leases = cast(dict[bytes, bytes], await self.r.hgetall(self.leases))
        now = time.time_ns() // 1_000_000
        for name, until in leases.items():
            if int(until) < now:
                await self.r.hdel(self.key, name)
                await self.r.hdel(self.leases, name)
        raw = cast(dict[bytes, bytes], await self.r.hgetall(self.key))
        return {k.decode(): int(v) for k, v in raw.items()}

    async def trim(self) -> int:
        """Remove the entries every registered consumer has applied; returns how many went. The entry holding the
        smallest confirmed out_seq + 1 stays, and so does the last entry (the engine resumes its out_seq there)."""
        offsets = await self.offsets()
        if not offsets:
            return 0
        keep_from = min(offsets.values()) + 1
        before = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            await self.r.xrevrange(self.stream_key, f"{keep_from}-0", "-", count=16),
        )
        # the engine's entries are "<first out_seq>-0"; an entry added by hand (which a consumer quarantines) may
        # sit between them with another id, and must not be taken for the holder
        holder = next((entry_id for entry_id, _ in before if entry_id.endswith(b"-0")), None)
        if holder is None:
            return 0
        return int(await self.r.xtrim(self.stream_key, minid=holder.decode(), approximate=False))
