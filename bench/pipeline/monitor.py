"""The venue's progress seen from outside: the engine's heartbeat in_seq, the journal's end, Redis's forks."""

from __future__ import annotations

import redis
import zmq

from sequencer.journal import Journal
from wire import keys
from wire.codec import decode_heartbeat
from wire.config import Settings


class Monitor:
    """The engine's progress (heartbeat in_seq, topic h/) and the journal's end (last entry in Redis)."""

    def __init__(self, settings: Settings, r: redis.Redis, shard: str) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.RCVHWM, 100_000)  # read every 0.1 s: never let old heartbeats crowd out new ones
        self.sub.setsockopt(zmq.SUBSCRIBE, b"h/")
        self.sub.connect(settings.events_pub_endpoint)
        self.journal = Journal(r, keys.journal(shard))
        self._in_seq = 0

    def engine_in_seq(self) -> int:
        while True:
            try:
                frames = self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return self._in_seq
            self._in_seq = max(self._in_seq, decode_heartbeat(frames[-1]).in_seq)

    def journaled(self) -> int:
        return self.journal.last_in_seq()

    def forks(self) -> tuple[int, int]:
        """Forks Redis made so far (AOF rewrites: the harness's Redis saves no RDB snapshots), and how long the
        latest one blocked Redis (µs)."""
        stats = self.journal.r.info("stats")
        return int(stats.get("total_forks", 0)), int(stats.get("latest_fork_usec", 0))

    def close(self) -> None:
        self.sub.close(0)
        self.ctx.term()
