"""The registry of events-stream consumers on a real Redis: persisters stay registered, live readers (gateways)
hold a lease that lapses unless renewed, and trimming respects whoever is registered."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from persistence.stream import Registry
from tests.harness import RedisServer
from wire import keys
from wire.codec import encode
from wire.events import AccountCreated


def test_a_live_readers_lease_holds_the_stream_back_until_it_lapses(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        r = aioredis.Redis.from_url(redis_server.url)
        try:
            for out_seq in range(1, 11):  # ten entries of one event each
                blob = encode([AccountCreated(out_seq, out_seq, 0, out_seq)])
                await r.xadd(keys.events("e0"), {b"b": blob}, id=f"{out_seq}-0")
            registry = Registry(r, "e0")
            await registry.confirm("postgres", 9)
            await registry.confirm("gateway:a", 3, lease=0.3)
            assert await registry.offsets() == {"postgres": 9, "gateway:a": 3}
            assert await registry.trim() == 3  # entries 1..3 go: the gateway still needs 4..
            assert await r.xlen(keys.events("e0")) == 7
            await asyncio.sleep(0.4)  # the gateway died: its lease lapses
            assert await registry.offsets() == {"postgres": 9}
            assert await registry.trim() == 6  # 4..9: the persister has them; the entry of out_seq 10 stays
            assert await r.xlen(keys.events("e0")) == 1
            await registry.confirm("gateway:b", 10, lease=5)
            assert await registry.unregister("gateway:b")
            assert await registry.offsets() == {"postgres": 9}
        finally:
            await r.aclose()

    asyncio.run(scenario())
