"""Rate limits shared by gateway processes through Redis (gateways.binance.limits): two limiters on one real Redis,
driven sync by sync, and two gateway processes of one exchange."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateways.binance.errors import ApiError
from gateways.binance.limits import Limits, RateLimiter
from tests.gateways.conftest import Exchange, answers_ping, running_exchange
from tests.gateways.test_rest import LIMIT, send, signed
from tests.harness import PostgresServer, RedisServer, Service, free_port, wait_for

NOW = 1_800_000_000_000  # ms, on a 10 s and a minute boundary
ACCOUNT = 7


def test_two_limiters_count_each_others_orders_after_a_sync(redis_server: RedisServer) -> None:
    async def body() -> None:
        redis = aioredis.Redis.from_url(redis_server.url)
        a, b = RateLimiter(Limits(orders_per_10s=3)), RateLimiter(Limits(orders_per_10s=3))
        headers: dict[str, str] = {}
        a.order(ACCOUNT, NOW, headers)
        a.order(ACCOUNT, NOW + 1, headers)
        await a.sync(redis, NOW + 2)
        b.order(ACCOUNT, NOW + 3, headers)
        assert headers["X-MBX-ORDER-COUNT-10S"] == "1"  # b has not synced: it knows only its own
        await b.sync(redis, NOW + 4)  # pushes its 1, learns the total 3
        with pytest.raises(ApiError) as refused:
            b.order(ACCOUNT, NOW + 5, headers)
        assert (refused.value.code, headers["X-MBX-ORDER-COUNT-10S"], headers["X-MBX-ORDER-COUNT-1D"]) == (
            -1015, "4", "4")  # fmt: skip
        await a.sync(redis, NOW + 6)
        with pytest.raises(ApiError):
            a.order(ACCOUNT, NOW + 7, headers)  # a learned b's orders, and counts the refused one too
        a.order(ACCOUNT, NOW + 10_000, headers)  # the next 10 s window starts from nothing; the day goes on
        # the day: the 3 in Redis, a's refused one and this one (b's refused one is not pushed yet)
        assert (headers["X-MBX-ORDER-COUNT-10S"], headers["X-MBX-ORDER-COUNT-1D"]) == ("1", "5")
        assert 0 < await redis.pttl(f"mercury:rate:o10s:{NOW}:{ACCOUNT}") <= 20_000  # it outlives its window only
        await redis.aclose()

    asyncio.run(body())


def test_a_count_near_its_share_of_the_limit_asks_for_a_sync_at_once() -> None:
    limiter = RateLimiter(Limits(weight_per_minute=100))
    limiter.request("10.0.0.1", 9, NOW, {})
    assert not limiter.sync_due.is_set()
    limiter.request("10.0.0.1", 1, NOW, {})  # 10 unsynced: a tenth of the limit
    assert limiter.sync_due.is_set()


def test_without_redis_each_limiter_still_enforces_what_it_saw(tmp_path: Path) -> None:
    async def body() -> None:
        gone = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
        limiter = RateLimiter(Limits(weight_per_minute=10))
        limiter.request("10.0.0.1", 6, NOW, {})
        await limiter.sync(gone, NOW + 1)  # fails (logged): the 6 stay pending
        headers: dict[str, str] = {}
        with pytest.raises(ApiError) as refused:
            limiter.request("10.0.0.1", 6, NOW + 2, headers)
        assert (refused.value.code, headers["X-MBX-USED-WEIGHT-1M"]) == (-1003, "12")
        await gone.aclose()

    asyncio.run(body())


def test_an_ip_that_goes_on_after_its_429s_is_banned_418_everywhere_for_longer_each_time(
    redis_server: RedisServer,
) -> None:
    """Weight 10 a minute: past 10 the answer is 429; at 20 (a whole limit more after its first 429) the IP is
    banned, 418 -1003 until the ban ends, on the process that saw it at once and on the other after its next
    sync; a ban after the first lasts twice as long; another IP is untouched."""

    async def body() -> None:
        redis = aioredis.Redis.from_url(redis_server.url)
        a, b = RateLimiter(Limits(weight_per_minute=10)), RateLimiter(Limits(weight_per_minute=10))
        statuses = []
        for i in range(21):
            try:
                a.request("10.0.0.9", 1, NOW + i, {})
                statuses.append(200)
            except ApiError as exc:
                statuses.append(exc.status)
        assert statuses == [200] * 10 + [429] * 9 + [418] * 2  # the 20th request of weight reached the ban
        with pytest.raises(ApiError) as refused:
            a.request("10.0.0.9", 1, NOW + 30, {})
        ban = refused.value
        assert (ban.status, ban.code, ban.retry_after, ban.retry_at) == (418, -1003, 120, NOW + 19 + 120_000)
        assert ban.msg == (f"Way too much request weight used; IP banned until {NOW + 19 + 120_000}. Please use"
                           " WebSocket Streams for live updates to avoid bans.")  # fmt: skip
        b.request("10.0.0.9", 1, NOW + 40, {})  # b has not synced: it has not heard of the ban
        await a.sync(redis, NOW + 50)  # the ban decided in Redis
        await b.sync(redis, NOW + 60)
        with pytest.raises(ApiError) as refused:
            b.request("10.0.0.9", 1, NOW + 70, {})
        assert refused.value.status == 418
        b.request("10.0.0.8", 1, NOW + 80, {})  # another client
        # the ban is over: allowed again (a new minute), until it does the same again, banned 4 minutes this time
        later = NOW + 180_000
        for i in range(20):
            with contextlib.suppress(ApiError):
                a.request("10.0.0.9", 1, later + i, {})
        await a.sync(redis, later + 50)
        with pytest.raises(ApiError) as refused:
            a.request("10.0.0.9", 1, later + 60, {})
        assert (refused.value.status, refused.value.retry_after) == (418, 240)
        await redis.aclose()

    asyncio.run(body())


# ---- two gateway processes -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer) -> Iterator[tuple[Exchange, str]]:
    """An exchange with small limits and a second gateway process on its Redis: (exchange, the second's URL)."""
    gateway_env = {"MERCURY_WEIGHT_PER_MINUTE": "400", "MERCURY_ORDERS_PER_10S": "3"}
    with running_exchange(tmp_path_factory.mktemp("pair"), postgres_server, gateway_env=gateway_env) as ex:
        port = free_port()
        second = Service("gateways.http", dict(ex.gateway.env, MERCURY_HTTP_PORT=str(port)),
                         ex.venue.dir / "gateway-2.log", "gateway ready")  # fmt: skip
        second.start()
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: answers_ping(url), 15, "the second gateway")
            yield ex, url
        finally:
            second.stop()


def _at(ex: Exchange, url: str) -> Exchange:
    """The same exchange reached through another gateway process."""
    return Exchange(ex.venue, ex.pg_url, url, ex.keys, ex.gateway)


def test_new_orders_through_two_gateways_share_the_10s_limit(pair: tuple[Exchange, str]) -> None:
    ex, second_url = pair
    gateways = [ex, _at(ex, second_url)]
    time.sleep(10 - time.time() % 10 + 0.05)  # a fresh 10 s window
    answers: list[tuple[int, Any]] = []
    for i in range(4):  # alternating, each after both gateways have synced (every 0.1 s: push, then read)
        answers.append(signed(gateways[i % 2], "POST", "/api/v3/order", {**LIMIT, "price": str(1000 + i)}, account=3))
        time.sleep(0.3)
    assert [status for status, _ in answers] == [200, 200, 200, 429], answers
    assert answers[3][1]["code"] == -1015  # per process, each gateway would have admitted all four


@pytest.mark.timeout(120)
def test_request_weight_through_two_gateways_shares_the_minute_limit(pair: tuple[Exchange, str]) -> None:
    # last in this module (it spends the minute's weight), in a fresh minute: these requests are all of its weight
    ex, second_url = pair
    gateways = [ex, _at(ex, second_url)]
    time.sleep(60 - time.time() % 60 + 0.05)
    statuses = []
    for i in range(30):  # exchangeInfo weighs 20: 400 a minute is 20 of them, through both gateways together
        statuses.append(send(gateways[i % 2], "GET", "/api/v3/exchangeInfo")[0])
        if statuses[-1] == 429:
            break
        time.sleep(0.3)  # more than two sync periods: one to push a count, one for the other gateway to read it
    assert statuses.count(200) == 20 and statuses[-1] == 429, statuses  # per process, each would have passed 20
