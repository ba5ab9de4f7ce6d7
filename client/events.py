"""Reading the engine's events: live from its PUB socket, complete from the events stream.

Topics on the engine's PUB socket (ZeroMQ prefix match, so every topic ends with ``/``):

- ``x/``            every event batch, exactly as stored in the events stream
- ``m/<SYMBOL>/``   that symbol's trades and book deltas
- ``a/<account>/``  that account's order events and trades
- ``h/``            heartbeats (wire.codec.Heartbeat)

``EventFollower`` gives a consumer every event once, in out_seq order: it follows ``x/`` live, drops what it has
seen, and reads whatever the socket dropped (a gap in out_seq) from the events stream in Redis.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis
import zmq

from engine.events_stream import read_events
from wire import keys
from wire.codec import Heartbeat, decode_events, decode_heartbeat
from wire.config import Settings, load_settings
from wire.events import Event


class EventSubscriber:
    """A SUB socket on the engine's events, for the given topic prefixes."""

    def __init__(self, settings: Settings | None = None, topics: Iterable[bytes] = (b"x/",)) -> None:
        self.settings = settings or load_settings()
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.socket = self._ctx.socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVHWM, 1_000_000)
        for topic in topics:
            self.socket.setsockopt(zmq.SUBSCRIBE, topic)
        self.socket.connect(self.settings.events_pub_endpoint)

    def recv(self, timeout: float) -> tuple[bytes, list[Event] | Heartbeat] | None:
        """The next message as (topic, events) or (b"h/", heartbeat); None after ``timeout`` seconds."""
        if not self.socket.poll(int(timeout * 1000)):
            return None
        topic, payload = self.socket.recv_multipart()
        if topic == b"h/":
            return topic, decode_heartbeat(payload)
        return topic, decode_events(payload)

    def close(self) -> None:
        self.socket.close(0)
        self._ctx.term()


class EventFollower:
    """Every event after ``after``, once each and in order, live where possible and from Redis where needed."""

    def __init__(self, r: redis.Redis, shard: str, settings: Settings | None = None, after: int = 0) -> None:
        self.r = r
        self.stream_key = keys.events(shard)
        self.last = after  # out_seq of the last event handed out
        self.engine_in_seq = 0  # from heartbeats: the engine has published everything caused up to here
        self.subscriber = EventSubscriber(settings, (b"x/", b"h/"))
        self._backlog: list[Event] = list(read_events(r, self.stream_key, after))

    def poll(self, timeout: float) -> list[Event]:
        """The next events (possibly none after ``timeout`` seconds)."""
        if self._backlog:
            events, self._backlog = self._backlog, []
            return self._fresh(events)
        message = self.subscriber.recv(timeout)
        if message is None:
            return []
        _, payload = message
        if isinstance(payload, Heartbeat):
            self.engine_in_seq = payload.in_seq
            if payload.out_seq > self.last:  # events we never saw live: fetch them
                return self._fresh(list(read_events(self.r, self.stream_key, self.last)))
            return []
        if payload and payload[0].out_seq > self.last + 1:  # a gap: the stream has the missing ones
            return self._fresh(list(read_events(self.r, self.stream_key, self.last)))
        return self._fresh(payload)

    def _fresh(self, events: list[Event]) -> list[Event]:
        last = self.last
        fresh = [ev for ev in events if ev.out_seq > last]
        for ev in fresh:
            if ev.out_seq != last + 1:
                raise AssertionError(f"events out of order: {ev.out_seq} after {last}")
            last = ev.out_seq
        self.last = last
        return fresh

    def close(self) -> None:
        self.subscriber.close()
