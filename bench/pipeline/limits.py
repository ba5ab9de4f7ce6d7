"""The machine's own limits: Redis round trips with redis-py, and the sequencer's per-command pyzmq and codec costs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import redis
import zmq

from bench.pipeline.constants import JOURNALED
from bench.pipeline.order_flow import OrderFlow
from wire.codec import Ack, RawJournalBatch, decode_command, encode


@dataclass(frozen=True, slots=True)
class RedisLimit:
    name: str
    round_trips_per_s: float
    commands_per_s: float

    @property
    def us_per_round_trip(self) -> float:
        return 1e6 / self.round_trips_per_s


def redis_limits(url: str, seconds: float) -> list[RedisLimit]:
    """Against the venue's own redis-server (AOF on, everysec), with redis-py, from this process."""
    r = redis.Redis.from_url(url)
    key = "bench:pipeline:xadd"
    _, frames = OrderFlow(99, "bench-redis").frames(256)
    stamps = [time.time_ns()] * 256
    one = encode(RawJournalBatch(1, stamps[:1], [msgspec.Raw(frames[0])]))
    batch = encode(RawJournalBatch(1, stamps, [msgspec.Raw(f) for f in frames]))
    results: list[RedisLimit] = []

    def timed(name: str, per_round_trip: int, call: Any) -> None:
        call()  # connect, warm up
        n = 0
        start = time.perf_counter()
        end = start + seconds
        while True:
            for _ in range(20):
                call()
            n += 20
            now = time.perf_counter()
            if now >= end:
                break
        rts = n / (now - start)
        results.append(RedisLimit(name, rts, rts * per_round_trip))

    def pipelined() -> None:
        pipe = r.pipeline(transaction=False)
        for _ in range(256):
            pipe.xadd(key, {b"b": one})
        pipe.execute()

    timed("PING, one per round trip", 1, r.ping)
    timed("XADD of one command, one per round trip", 1, lambda: r.xadd(key, {b"b": one}))
    timed("256 XADDs of one command each, one pipeline per round trip", 256, pipelined)
    timed("XADD of one 256-command batch (one msgpack blob) per round trip", 256, lambda: r.xadd(key, {b"b": batch}))
    r.delete(key)
    r.close()
    return results


@dataclass(frozen=True, slots=True)
class PlumbingCost:
    name: str
    us: float  # microseconds of this process's time per operation


def plumbing_costs(directory: Path, n: int = 50_000, repeats: int = 3) -> list[PlumbingCost]:
    """What the per-command Python plumbing of the sequencer costs, one operation at a time, on a private
    ROUTER <- DEALER pair over ipc in this process: the same pyzmq calls and msgspec codecs the sequencer makes
    for every command (and the engine's writer for every topic message). Best of ``repeats``."""
    runs = [_plumbing_once(directory, n) for _ in range(repeats)]
    return [PlumbingCost(first.name, min(r[i].us for r in runs)) for i, first in enumerate(runs[0])]


def _plumbing_once(directory: Path, n: int) -> list[PlumbingCost]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router, dealer = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    for sock in (router, dealer):
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
    endpoint = f"ipc://{directory}/plumbing"
    router.bind(endpoint)
    dealer.connect(endpoint)
    _, frames = OrderFlow(98, "bench-plumbing").frames(n)
    ack = encode(Ack(1, JOURNALED, 1))
    results: list[PlumbingCost] = []

    def queued() -> None:
        for f in frames:
            dealer.send(f)
        while router.poll(0) == 0:
            time.sleep(0.01)
        time.sleep(0.3)  # everything is in the router's queue

    def timed(name: str, loop: Any) -> None:
        t = time.perf_counter()
        loop()
        results.append(PlumbingCost(name, (time.perf_counter() - t) / n * 1e6))

    def drain() -> None:
        got = 0
        while got < n and dealer.poll(2000):
            dealer.recv()
            got += 1

    queued()
    idents: list[bytes] = []
    timed("`recv_multipart(NOBLOCK)` of one command (identity + body)", lambda: idents.extend(
        router.recv_multipart(zmq.NOBLOCK)[0] for _ in range(n)))  # fmt: skip
    timed("`send_multipart([identity, ack])` of one ack", lambda: [router.send_multipart([i, ack]) for i in idents])
    drain()
    more, send = int(zmq.SNDMORE), router.send
    timed("the same ack as `send(identity, SNDMORE)` + `send(ack)`, int flag", lambda: [
        (send(i, more), send(ack)) for i in idents])  # fmt: skip
    drain()
    queued()
    recv, get, rcvmore, noblock = router.recv, router.get, int(zmq.RCVMORE), int(zmq.NOBLOCK)

    def recv_plain() -> None:
        for _ in range(n):
            recv(noblock)
            recv(noblock)
            get(rcvmore)

    timed("the same command as `recv` + `recv` + one `get(RCVMORE)` (frame count check)", recv_plain)
    timed("one `getsockopt(RCVMORE)`", lambda: [router.getsockopt(zmq.RCVMORE) for _ in range(n)])
    timed("`decode_command` (typed msgspec decode) of one command", lambda: [decode_command(f) for f in frames])
    timed("`encode(Ack(...))` of one ack", lambda: [encode(Ack(i, JOURNALED, i)) for i in range(n)])
    router.close(0)
    dealer.close(0)
    ctx.term()
    return results
