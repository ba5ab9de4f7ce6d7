"""What the bots see of the market: each symbol's public trades and best bid and ask, from the market-data feeds'
combined stream (``/stream?streams=<symbol>@trade/<symbol>@bookTicker/...``), reconnected whenever a feed restarts,
and each symbol's fair value for the market makers (the only bots that know it)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from decimal import Decimal

import aiohttp

from sim.rest import Http, Unavailable, json_object

log = logging.getLogger("sim.marketdata")


@dataclass
class MarketView:
    """The market as the bots' decisions see it: a plain record the simulator keeps up to date (and tests fill)."""

    fair: dict[str, Decimal] = field(default_factory=dict)  # symbol -> fair value (market makers only)
    last: dict[str, Decimal] = field(default_factory=dict)  # symbol -> last public trade price
    bid: dict[str, Decimal] = field(default_factory=dict)  # symbol -> best bid (absent: no bid)
    ask: dict[str, Decimal] = field(default_factory=dict)  # symbol -> best ask
    trades: int = 0  # public trades seen


async def last_prices(http: Http, symbols: list[str]) -> dict[str, Decimal]:
    """Each symbol's last trade price, from ``GET /api/v3/trades?limit=1`` (absent for a symbol never traded)."""
    out: dict[str, Decimal] = {}
    for symbol in symbols:
        trades = await http.public("/api/v3/trades", {"symbol": symbol, "limit": "1"})
        if isinstance(trades, list) and trades:
            out[symbol] = Decimal(trades[-1]["price"])
    return out


def set_top(view: MarketView, symbol: str, bid: str, bid_qty: str, ask: str, ask_qty: str) -> None:
    """A book ticker's best bid and ask into the view (a side without orders is sent as price and quantity 0)."""
    for side, price, qty in ((view.bid, bid, bid_qty), (view.ask, ask, ask_qty)):
        if Decimal(price) > 0 and Decimal(qty) > 0:
            side[symbol] = Decimal(price)
        else:
            side.pop(symbol, None)


async def book_tops(http: Http, symbols: list[str], view: MarketView) -> None:
    """Each symbol's best bid and ask now, from ``GET /api/v3/ticker/bookTicker``."""
    for symbol in symbols:
        top = await http.public("/api/v3/ticker/bookTicker", {"symbol": symbol})
        set_top(view, symbol, top["bidPrice"], top["bidQty"], top["askPrice"], top["askQty"])


async def follow_market(http: Http, symbols: list[str], view: MarketView) -> None:
    """Keep ``view`` at each symbol's last trade and best prices, for as long as the simulator runs."""
    streams = "/".join(f"{s.lower()}@{stream}" for s in symbols for stream in ("trade", "bookTicker"))
    url = f"{http.ws_url}/stream?streams={streams}"
    pause = 0.5
    while True:
        try:
            async with http.session.ws_connect(url, heartbeat=30) as ws:
                pause = 0.5
                # what changed while the stream was down: the last trade and the best prices of each symbol
                view.last.update(await last_prices(http, symbols))
                await book_tops(http, symbols, view)
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    data = json_object(message.data).get("data")
                    if not isinstance(data, dict):
                        continue
                    if data.get("e") == "trade":
                        view.last[str(data["s"])] = Decimal(data["p"])
                        view.trades += 1
                    elif "b" in data and "a" in data:  # a book ticker (it has no event type)
                        set_top(view, str(data["s"]), data["b"], data["B"], data["a"], data["A"])
        except (aiohttp.ClientError, OSError, TimeoutError, Unavailable, KeyError) as exc:
            log.debug("trade stream: %s", exc)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 5.0)
