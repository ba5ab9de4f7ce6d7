"""Stream names as Binance spells them, parsed into what the hub keys its subscriptions by.

``<symbol>`` is the lower-case symbol. Depth diffs go out at the stream's rate: ``@depth`` every 1000 ms,
``@depth@100ms`` every 100 ms, and Mercury's ``@depth@0ms`` after every engine batch (real time; Binance has no such
spot stream, and a client that does not ask for it never sees it).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from persistence.klines import WIDTH

RATES = (0, 100, 1000)  # ms: the depth and partial-depth rates
PARTIAL_LEVELS = (5, 10, 20)

_SYMBOL_STREAM = re.compile(
    r"^(?P<symbol>[a-z0-9]{1,20})@(?:"
    r"(?P<depth>depth)(?P<levels>5|10|20)?(?:@(?P<rate>0|100|1000)ms)?"
    r"|(?P<kind>trade|aggTrade|ticker|miniTicker|bookTicker)"
    r"|kline_(?P<interval>[0-9]+[smhd])"
    r"|ticker_(?P<window>1h|4h|1d)"
    r")$"
)
ALL_MARKET = {"!miniTicker@arr": "miniTicker", "!ticker@arr": "ticker"}
WINDOWS = ("1h", "4h", "1d")  # the rolling windows of <symbol>@ticker_<window> and !ticker_<window>@arr, as Binance's
ALL_WINDOWS = {f"!ticker_{w}@arr": w for w in WINDOWS}


class Stream(NamedTuple):
    name: str  # as subscribed (the key of LIST_SUBSCRIPTIONS and of combined-stream wrappers)
    # depth, partial, trade, aggTrade, kline, ticker, miniTicker, bookTicker, windowTicker, allMiniTicker, allTicker,
    # allWindowTicker
    kind: str
    symbol: str  # upper case, as the venue names it ("" for the all-market arrays)
    arg: str = ""  # kline: the interval; windowTicker, allWindowTicker: the window
    rate: int = 0  # depth and partial: ms between messages
    levels: int = 0  # partial: levels per side


class BadStream(ValueError):
    pass


def parse(name: str, symbols: frozenset[str]) -> Stream:
    """The stream ``name`` names, or BadStream saying why."""
    if not isinstance(name, str):
        raise BadStream(f"stream names are strings, not {type(name).__name__}")
    if name in ALL_MARKET:
        return Stream(name, "all" + ALL_MARKET[name][0].upper() + ALL_MARKET[name][1:], "")
    if name in ALL_WINDOWS:
        return Stream(name, "allWindowTicker", "", arg=ALL_WINDOWS[name])
    m = _SYMBOL_STREAM.match(name)
    if m is None:
        raise BadStream(f"invalid stream name {name!r}")
    symbol = m["symbol"].upper()
    if symbol not in symbols:
        raise BadStream(f"unknown symbol in stream {name!r}")
    if m["depth"]:
        rate = int(m["rate"] or 1000)
        if m["levels"]:
            if rate == 0:
                raise BadStream(f"partial depth streams go out every 100 or 1000 ms: {name!r}")
            return Stream(name, "partial", symbol, rate=rate, levels=int(m["levels"]))
        return Stream(name, "depth", symbol, rate=rate)
    if m["interval"]:
        if m["interval"] not in WIDTH:
            raise BadStream(f"unknown kline interval in {name!r} (Mercury has {', '.join(WIDTH)})")
        return Stream(name, "kline", symbol, arg=m["interval"])
    if m["window"]:
        return Stream(name, "windowTicker", symbol, arg=m["window"])
    return Stream(name, m["kind"], symbol)
