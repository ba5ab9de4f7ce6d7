"""The gateways' wall clock: Binance's timestamps are ms since the epoch (the engine's own time is the sequencer's
stamp; a gateway reads the clock only for what clients send and expect: timestamps, recvWindow, serverTime)."""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000
