"""Binance's rate limits: request weight per IP per minute, and new orders per account per 10 s and per day, counted
across every gateway process (and, for the weight, every feed: feeds/weights.py) through Redis.

Fixed windows aligned to the clock, as Binance counts them, reported on every response in Binance's headers
(``X-MBX-USED-WEIGHT-1M``, ``X-MBX-ORDER-COUNT-10S``, ``X-MBX-ORDER-COUNT-1D``). Past a limit the answer is 429 with
``Retry-After`` (seconds until the window ends) and -1003 (weight) or -1015 (orders); an IP that goes on to twice
its weight limit is banned, 418 (gateways.binance.bans, shared at each sync).

Sharing without a Redis round trip per request: each process counts exactly, in memory, what it admitted and has
not yet pushed (``pending``), and keeps the last global total Redis gave it per key. A request is judged, and the
headers report, against ``global + in flight + pending``. ``RateLimiter.sync`` pushes every pending count with one
pipelined INCRBY + PEXPIRE per (window, key) and takes the totals INCRBY returns as the new global ones (an INCRBY
of 0 refreshes a key this process saw but has nothing new for). The gateway runs it every ``SYNC_PERIOD`` and at
once when a key's pending count reaches ``SYNC_FRACTION`` of its limit. A count reaches Redis within one sync period
and the other processes within the next, so a burst can pass a limit by at most what the processes admit within
about two sync periods (each at most about ``SYNC_FRACTION`` of the limit per key before it syncs early, plus a
round trip): the bound docs/api.md and docs/operations.md state. When Redis is unreachable the counts stay pending
and every process still enforces what it has seen itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateways.binance.bans import BAN_FACTOR, Bans, ban_key
from gateways.binance.errors import ApiError, limited
from wire.config import Settings

log = logging.getLogger("mercury.gateway.limits")

MINUTE_MS = 60_000
TEN_S_MS = 10_000
DAY_MS = 86_400_000
# the response headers with each count, in the order of Limits.advertised()
COUNT_HEADERS = ("X-MBX-USED-WEIGHT-1M", "X-MBX-ORDER-COUNT-10S", "X-MBX-ORDER-COUNT-1D")
SYNC_PERIOD = 0.1  # s between two syncs with Redis
SYNC_FRACTION = 0.1  # a key's unsynced count that makes the next sync start at once, as a fraction of its limit


@dataclass(frozen=True, slots=True)
class Limits:
    weight_per_minute: int = 6_000
    orders_per_10s: int = 100
    orders_per_day: int = 200_000

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.weight_per_minute, settings.orders_per_10s, settings.orders_per_day)

    def advertised(self) -> list[dict[str, object]]:
        """exchangeInfo's ``rateLimits``: what the gateways enforce, listed as Binance lists its own (bots read it
        to pace themselves)."""
        weight = {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                  "limit": self.weight_per_minute}  # fmt: skip
        return [weight, *self.order_limits()]

    def reported(self, headers: Mapping[str, str]) -> list[dict[str, object]]:
        """A WebSocket API reply's ``rateLimits``: each limit this request counted against, with its count (the
        numbers the REST headers carry)."""
        counts = [headers.get(name) for name in COUNT_HEADERS]
        limits = zip(self.advertised(), counts, strict=True)
        return [{**limit, "count": int(count)} for limit, count in limits if count is not None]

    def order_limits(self) -> list[dict[str, object]]:
        """The new-order limits per account: per 10 s, then per day."""
        return [
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.orders_per_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": self.orders_per_day},
        ]


class Lookup(Protocol):
    """Request parameters by name: a query's mapping, a WebSocket API request's params, or Params."""

    def get(self, key: str, /) -> object: ...


@dataclass(frozen=True, slots=True)
class Weighed:
    """A request Binance weighs by what it asks for: ``weight`` when ``param`` is given (not empty), ``otherwise``
    without."""

    param: str
    weight: int
    otherwise: int

    def of(self, params: Lookup) -> int:
        return self.weight if params.get(self.param) not in (None, "") else self.otherwise

    def describe(self) -> str:
        return f"{self.weight} with {self.param}, {self.otherwise} without"


# Binance's weights by parameters, the same on REST and the WebSocket API (their endpoint tables name them): a bot
# that paces itself by Binance's table stays inside Mercury's limit the same way
OPEN_ORDERS = Weighed("symbol", 6, 80)
MY_TRADES = Weighed("orderId", 5, 20)
MY_PREVENTED_MATCHES = Weighed("preventedMatchId", 2, 20)
Weight = int | Weighed


def spent(weight: Weight, params: Lookup) -> int:
    """What one request of an endpoint of ``weight`` spends."""
    return weight if isinstance(weight, int) else weight.of(params)


class _Window:
    """One kind of count in the current fixed window: per key, the global total Redis last gave, what is in flight
    to Redis, and what this process admitted since (pending). All of it is dropped when the window ends."""

    __slots__ = ("glob", "in_flight", "length", "limit", "name", "pending", "start")

    def __init__(self, name: str, length: int, limit: int) -> None:
        self.name = name
        self.length = length
        self.limit = limit
        self.start = 0
        self.glob: dict[str, int] = {}
        self.in_flight: dict[str, int] = {}
        self.pending: dict[str, int] = {}

    def roll(self, now_ms: int) -> None:
        start = now_ms - now_ms % self.length
        if start != self.start:
            self.start, self.glob, self.in_flight, self.pending = start, {}, {}, {}

    def add(self, key: str, amount: int, now_ms: int) -> tuple[int, bool]:
        """Count ``amount`` for ``key``; returns the global estimate and whether a sync is due now."""
        self.roll(now_ms)
        pending = self.pending.get(key, 0) + amount
        self.pending[key] = pending
        used = self.glob.get(key, 0) + self.in_flight.get(key, 0) + pending
        return used, pending >= self.limit * SYNC_FRACTION

    def used(self, key: str, now_ms: int) -> int:
        """The global estimate for ``key`` now, counting nothing new."""
        self.roll(now_ms)
        return self.glob.get(key, 0) + self.in_flight.get(key, 0) + self.pending.get(key, 0)

    def redis_key(self, key: str) -> str:
        return f"mercury:rate:{self.name}:{self.start}:{key}"

    def refused(self, code: int, msg: str, now_ms: int) -> ApiError:
        """The 429 answer past this window's limit: try again once it ends."""
        return limited(429, code, msg, self.start + self.length, now_ms)


class RateLimiter:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.weight = _Window("w1m", MINUTE_MS, limits.weight_per_minute)
        self.orders_10s = _Window("o10s", TEN_S_MS, limits.orders_per_10s)
        self.orders_day = _Window("o1d", DAY_MS, limits.orders_per_day)
        self.bans = Bans()
        self.sync_due = asyncio.Event()

    def request(self, ip: str, weight: int, now_ms: int, headers: dict[str, str]) -> None:
        self.bans.check(ip, now_ms)
        used, due = self.weight.add(ip, weight, now_ms)
        if due:
            self.sync_due.set()
        headers[COUNT_HEADERS[0]] = str(used)
        if used >= BAN_FACTOR * self.limits.weight_per_minute:  # it did not back off after its 429s
            self.sync_due.set()
            raise self.bans.strike(ip, now_ms)
        if used > self.limits.weight_per_minute:
            raise self.weight.refused(
                -1003,
                f"Too much request weight used; current limit is {self.limits.weight_per_minute} request weight per"
                " 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
                now_ms,
            )

    def order(self, account: int, now_ms: int, headers: dict[str, str]) -> None:
        in_10s, due_10s = self.orders_10s.add(str(account), 1, now_ms)
        in_day, due_day = self.orders_day.add(str(account), 1, now_ms)
        if due_10s or due_day:
            self.sync_due.set()
        headers[COUNT_HEADERS[1]] = str(in_10s)
        headers[COUNT_HEADERS[2]] = str(in_day)
        if in_10s > self.limits.orders_per_10s:
            raise self.orders_10s.refused(-1015, f"Too many new orders; current limit is {self.limits.orders_per_10s}"
                                          " orders per 10 SECOND.", now_ms)  # fmt: skip
        if in_day > self.limits.orders_per_day:
            raise self.orders_day.refused(-1015, f"Too many new orders; current limit is {self.limits.orders_per_day}"
                                          " orders per DAY.", now_ms)  # fmt: skip

    def order_counts(self, account: int, now_ms: int) -> list[dict[str, object]]:
        """GET /api/v3/rateLimit/order: each new-order limit of ``account`` with its count in the current window."""
        counts = (self.orders_10s.used(str(account), now_ms), self.orders_day.used(str(account), now_ms))
        return [{**limit, "count": count} for limit, count in zip(self.limits.order_limits(), counts, strict=True)]

    async def sync(self, redis: aioredis.Redis, now_ms: int) -> None:
        """Push every pending count to Redis and take back the global totals, in one pipelined round trip."""
        sent: list[tuple[_Window, int, str, int]] = []  # window, its start, key, amount
        try:
            await self.bans.decide(redis, now_ms)
        except (RedisError, OSError) as exc:  # the local bans stand; decided at the next sync
            log.warning("IP ban with Redis failed: %s", exc)
        pipe = redis.pipeline(transaction=False)
        for window in (self.weight, self.orders_10s, self.orders_day):
            window.roll(now_ms)
            for key in window.glob.keys() | window.pending.keys():
                amount = window.pending.pop(key, 0)
                if amount:
                    window.in_flight[key] = window.in_flight.get(key, 0) + amount
                name = window.redis_key(key)
                pipe.incrby(name, amount)
                pipe.pexpire(name, 2 * window.length)  # the key names its window: it only has to outlive it
                sent.append((window, window.start, key, amount))
        if not sent:
            return
        ips = list(self.weight.glob.keys() | self.weight.in_flight.keys())  # the bans other processes decided
        for ip in ips:
            pipe.get(ban_key(ip))
        try:
            results = await pipe.execute()
        except (RedisError, OSError) as exc:
            # unknown whether the increments landed: count them as pending again (refusing a little early, never
            # admitting beyond what this process saw), to be pushed by the next sync
            log.warning("rate limit sync with Redis failed: %s", exc)
            for window, start, key, amount in sent:
                if window.start == start and amount:
                    window.in_flight[key] -= amount
                    window.pending[key] = window.pending.get(key, 0) + amount
            return
        self.bans.learn(ips, results[2 * len(sent) :])
        for i, (window, start, key, amount) in enumerate(sent):
            if window.start != start:  # the window ended while the round trip was under way
                continue
            window.glob[key] = int(results[2 * i])  # this process's in-flight amount is part of it now
            if amount:
                window.in_flight[key] -= amount

    async def run(self, redis: aioredis.Redis, clock: Callable[[], int]) -> None:
        """Sync every SYNC_PERIOD, or sooner when a count asks for it, until cancelled."""
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for drops a cancellation that arrives as the wait ends,
            # and a lost cancel kept this loop (and the gateway's stop) going until the supervisor's SIGKILL
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SYNC_PERIOD):
                    await self.sync_due.wait()
            self.sync_due.clear()
            try:
                await self.sync(redis, clock())
            except Exception:  # a bug must not end sharing for the life of the process: log it, sync again
                log.exception("rate limit sync")
