"""Binance's request weights of the public market-data endpoints, counted against the same per-IP budget as the
gateways' (gateways.binance.limits, shared through Redis): a bot that polls a depth of 5000 every second is refused
here as it would be on Binance, rather than learning it there.

A weight never raises: a malformed parameter weighs as its default here and is refused by the endpoint itself, after
it was counted (Binance counts a refused request too).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from gateways.binance.limits import Weighed
from gateways.binance.params import Params

Weigher = Callable[[Params], int]

# GET /api/v3/depth by its limit: (the largest limit of a band, its weight), in order
DEPTH_BANDS = ((100, 5), (500, 25), (1000, 50), (5000, 250))
ROLLING_PER_SYMBOL, ROLLING_CAP = 4, 200  # GET /api/v3/ticker: 4 a symbol, at most 200


def _integer(params: Params, name: str, default: int) -> int:
    text = params.get(name)
    return int(text) if text is not None and text.isdigit() else default


def _asked(params: Params, every: int) -> int | None:
    """How many symbols a ticker request names: 1 for ``symbol``, the length of ``symbols``, None for every one
    (``every`` is the venue's count, for a request whose list does not parse)."""
    if params.get("symbol") is not None:
        return 1
    text = params.get("symbols")
    if text is None:
        return None
    try:
        names = json.loads(text)
    except ValueError:
        return every
    return len(names) if isinstance(names, list) else every


def depth(params: Params) -> int:
    limit = _integer(params, "limit", 100)
    return next((weight for top, weight in DEPTH_BANDS if limit <= top), DEPTH_BANDS[-1][1])


def fixed(weight: int) -> Weigher:
    return lambda params: weight


def ticker_24hr(symbol_count: int) -> Weigher:
    def weigh(params: Params) -> int:
        n = _asked(params, symbol_count)
        if n is None or n > 100:
            return 80
        return 2 if n <= 20 else 40

    return weigh


def ticker_rolling(symbol_count: int) -> Weigher:
    def weigh(params: Params) -> int:
        n = _asked(params, symbol_count)
        return min(ROLLING_PER_SYMBOL * (symbol_count if n is None else n), ROLLING_CAP)

    return weigh


# ticker/price and ticker/bookTicker: 2 for one symbol, 4 for a list or all
one_or_all: Weigher = Weighed("symbol", 2, 4).of
