"""Binance's IP ban (HTTP 418): for an IP that goes on sending after it was answered 429.

Binance bans "repeatedly violating rate limits and/or failing to back off after receiving 429s", for "from 2
minutes to 3 days" growing for repeat offenders, and answers every request of a banned IP 418 with -1003. Mercury
makes that exact: an IP whose request weight in one minute window reaches ``BAN_FACTOR`` times the limit (it sent a
whole limit's worth more after its first 429) is banned. The first ban lasts ``FIRST_BAN_MS``; each further one
while its strikes are remembered (``STRIKE_MEMORY_MS`` after the last) twice the one before, at most
``LONGEST_BAN_MS``. A bot that backs off as Retry-After says is never banned.

Every gateway and feed process shares the bans through Redis: the strike count and the ban's end are decided in one
script (so two processes that see the same IP at once strike it once), and each process learns the others' bans at
its next sync with the rate limits (gateways.binance.limits). Until Redis answers, the process that saw it bans the
IP on its own for ``FIRST_BAN_MS``.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

from gateways.binance.errors import ApiError, limited

BAN_FACTOR = 2
FIRST_BAN_MS = 120_000
LONGEST_BAN_MS = 3 * 86_400_000
STRIKE_MEMORY_MS = LONGEST_BAN_MS

# KEYS: the ban (its end, ms), the strikes; ARGV: now, first ban, longest ban, strike memory (ms). Returns the end.
_STRIKE = """
local banned = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
if banned > now then return banned end
local strikes = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local length = math.min(tonumber(ARGV[2]) * 2 ^ math.min(strikes - 1, 40), tonumber(ARGV[3]))
redis.call('SET', KEYS[1], now + length, 'PX', math.floor(length))
return now + length
"""


def ban_key(ip: str) -> str:
    return f"mercury:ban:{ip}"


def banned(until_ms: int, now_ms: int) -> ApiError:
    return limited(418, -1003, f"Way too much request weight used; IP banned until {until_ms}. Please use WebSocket"
                   " Streams for live updates to avoid bans.", until_ms, now_ms)  # fmt: skip


class Bans:
    """The bans this process knows of (IP -> end, ms), and the IPs it struck that Redis has not decided yet."""

    def __init__(self) -> None:
        self.until: dict[str, int] = {}
        self.struck: set[str] = set()

    def check(self, ip: str, now_ms: int) -> None:
        """Raise the 418 answer if ``ip`` is banned now."""
        until = self.until.get(ip)
        if until is not None:
            if until > now_ms:
                raise banned(until, now_ms)
            del self.until[ip]

    def strike(self, ip: str, now_ms: int) -> ApiError:
        """``ip`` reached the ban threshold: banned here at once (for the first ban's length until Redis says
        how long), and the answer to give it."""
        self.until[ip] = until = now_ms + FIRST_BAN_MS
        self.struck.add(ip)
        return banned(until, now_ms)

    async def decide(self, redis: aioredis.Redis, now_ms: int) -> None:
        """Each IP struck here since the last call, decided in Redis (one script call each: strikes are rare). Raises
        what Redis raises, the IPs left to decide at the next call."""
        while self.struck:
            ip = next(iter(self.struck))
            result = await redis.eval(_STRIKE, 2, ban_key(ip), f"mercury:strikes:{ip}", now_ms, FIRST_BAN_MS,
                                      LONGEST_BAN_MS, STRIKE_MEMORY_MS)  # fmt: skip
            self.until[ip] = int(result)
            self.struck.discard(ip)

    def learn(self, ips: Iterable[str], ends: Iterable[bytes | None]) -> None:
        """The ends of the bans Redis holds for ``ips`` (GETs of their ban keys, None where there is none)."""
        for ip, end in zip(ips, ends, strict=True):
            if end is not None and ip not in self.struck:
                self.until[ip] = int(end)
