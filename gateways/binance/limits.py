"""Binance's rate limits: request weight per IP per minute, and new orders per account per 10 s and per day.

Fixed windows aligned to the clock, as Binance counts them, reported on every response in Binance's headers
(``X-MBX-USED-WEIGHT-1M``, ``X-MBX-ORDER-COUNT-10S``, ``X-MBX-ORDER-COUNT-1D``). Past a limit the answer is 429 with
``Retry-After`` (seconds until the window ends) and -1003 (weight) or -1015 (orders). The counts are per gateway
process: with N gateways behind a load balancer a client gets up to N times the limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateways.binance.errors import ApiError

MINUTE_MS = 60_000
TEN_S_MS = 10_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Limits:
    weight_per_minute: int = 6_000
    orders_per_10s: int = 100
    orders_per_day: int = 200_000


class _Window:
    """Counts per key in the current fixed window; the previous window's counts are dropped when it ends."""

    __slots__ = ("counts", "length", "start")

    def __init__(self, length: int) -> None:
        self.length = length
        self.start = 0
        self.counts: dict[object, int] = {}

    def add(self, key: object, amount: int, now_ms: int) -> int:
        start = now_ms - now_ms % self.length
        if start != self.start:
            self.start, self.counts = start, {}
        total = self.counts.get(key, 0) + amount
        self.counts[key] = total
        return total

    def retry_after(self, now_ms: int) -> int:
        return max(1, -(-(self.start + self.length - now_ms) // 1000))


class RateLimiter:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.weight = _Window(MINUTE_MS)
        self.orders_10s = _Window(TEN_S_MS)
        self.orders_day = _Window(DAY_MS)

    def request(self, ip: str, weight: int, now_ms: int, headers: dict[str, str]) -> None:
        used = self.weight.add(ip, weight, now_ms)
        headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        if used > self.limits.weight_per_minute:
            raise ApiError(
                429,
                -1003,
                f"Too much request weight used; current limit is {self.limits.weight_per_minute} request weight per"
                " 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
                self.weight.retry_after(now_ms),
            )

    def order(self, account: int, now_ms: int, headers: dict[str, str]) -> None:
        in_10s = self.orders_10s.add(account, 1, now_ms)
        in_day = self.orders_day.add(account, 1, now_ms)
        headers["X-MBX-ORDER-COUNT-10S"] = str(in_10s)
        headers["X-MBX-ORDER-COUNT-1D"] = str(in_day)
        if in_10s > self.limits.orders_per_10s:
            raise ApiError(429, -1015, f"Too many new orders; current limit is {self.limits.orders_per_10s} orders"
                           " per 10 SECOND.", self.orders_10s.retry_after(now_ms))  # fmt: skip
        if in_day > self.limits.orders_per_day:
            raise ApiError(429, -1015, f"Too many new orders; current limit is {self.limits.orders_per_day} orders"
                           " per DAY.", self.orders_day.retry_after(now_ms))  # fmt: skip
