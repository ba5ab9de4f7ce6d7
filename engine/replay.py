"""``python -m engine.replay``: re-run a journal on a fresh engine and print the hash of the events it produced.

Anyone can audit a venue with it: two replays of one journal print the same hash (the engine is deterministic),
and ``--check-stream`` compares the replay, event by event, with what the live engine stored in the events
stream (same events, no gap, no duplicate). The events hash is SHA-256 over each event's msgpack encoding in
out_seq order, so it does not depend on how events were batched.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass

import redis

from engine.core import Engine
from engine.events_stream import read_events
from sequencer.journal import Journal
from wire import keys
from wire.codec import encode
from wire.config import load_settings
from wire.events import Event
from wire.venue import DEFAULT_VENUE, Venue, load_venue


@dataclass(frozen=True)
class ReplayResult:
    commands: int
    events: int
    events_hash: str
    state_hash: str
    engine: Engine


def replay(
    r: redis.Redis, venue: Venue, upto: int | None = None, keep: list[Event] | None = None, hash_from: int = 1
) -> ReplayResult:
    """Apply the whole journal (or up to in_seq ``upto``) to a fresh engine. ``events`` and ``events_hash`` count
    the events from out_seq ``hash_from`` on (to compare with a trimmed events stream)."""
    engine = Engine(venue.symbols, venue.assets)
    digest = hashlib.sha256()
    events = 0
    for batch in Journal(r, keys.journal(venue.shard)).read_from(1):
        for i, cmd in enumerate(batch.cmds):
            in_seq = batch.first_in_seq + i
            if upto is not None and in_seq > upto:
                break
            for ev in engine.apply(in_seq, batch.stamps[i], cmd):
                if ev.out_seq >= hash_from:
                    digest.update(encode(ev))
                    events += 1
                if keep is not None:
                    keep.append(ev)
    return ReplayResult(engine.in_seq, events, digest.hexdigest(), engine.state_hash(), engine)


def stream_hash(r: redis.Redis, shard: str) -> tuple[int, int, str]:
    """(first out_seq, events, hash) of what the live engine stored, checked gap-free. The stream may have been
    trimmed below what every consumer has applied (persistence.stream): then it starts past out_seq 1."""
    digest = hashlib.sha256()
    count = first = 0
    for ev in read_events(r, keys.events(shard)):
        if not count:
            first = ev.out_seq
        if ev.out_seq != first + count:
            raise SystemExit(f"events stream has a gap or duplicate: out_seq {ev.out_seq} at position {count + 1}")
        count += 1
        digest.update(encode(ev))
    return first, count, digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.replay", description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=None, help="Redis URL (default: MERCURY_REDIS_URL)")
    parser.add_argument("--venue", default=None, help="venue TOML (default: MERCURY_VENUE_FILE or config/venue.toml)")
    parser.add_argument("--upto", type=int, default=None, help="stop after this in_seq")
    parser.add_argument("--check-stream", action="store_true", help="compare with the live events stream")
    args = parser.parse_args(argv)
    settings = load_settings()
    venue = load_venue(args.venue or settings.venue_file or DEFAULT_VENUE)
    r = redis.Redis.from_url(args.redis or settings.redis_url, socket_connect_timeout=2)
    try:
        first = stream_hash(r, venue.shard)[0] if args.check_stream else 1
        result = replay(r, venue, args.upto, hash_from=max(first, 1))
    except redis.ConnectionError as exc:
        print(f"error: cannot reach Redis: {exc}", file=sys.stderr)
        return 2
    print(f"commands {result.commands}")
    print(f"events {result.events}" + (f" (from out_seq {first})" if first > 1 else ""))
    print(f"events_sha256 {result.events_hash}")
    print(f"state_sha256 {result.state_hash}")
    if args.check_stream:
        first, count, digest = stream_hash(r, venue.shard)
        print(f"stream_events {count}" + (f" (from out_seq {first}: trimmed below it)" if first > 1 else ""))
        print(f"stream_sha256 {digest}")
        if (count, digest) != (result.events, result.events_hash):
            print("MISMATCH: the events stream differs from the replay", file=sys.stderr)
            return 1
        print("stream matches replay")
    return 0


if __name__ == "__main__":
    sys.exit(main())
