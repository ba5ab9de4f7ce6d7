"""What the bots see of the market: the public trades of each symbol, from the market-data feeds' combined stream
(``/stream?streams=<symbol>@trade/...``), reconnected whenever a feed restarts, and each symbol's fair value for
the market makers (the only bots that know it)."""

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
    trades: int = 0  # public trades seen


async def last_prices(http: Http, symbols: list[str]) -> dict[str, Decimal]:
    """Each symbol's last trade price, from ``GET /api/v3/trades?limit=1`` (absent for a symbol never traded)."""
    out: dict[str, Decimal] = {}
    for symbol in symbols:
        trades = await http.public("/api/v3/trades", {"symbol": symbol, "limit": "1"})
        if isinstance(trades, list) and trades:
            out[symbol] = Decimal(trades[-1]["price"])
    return out


async def follow_trades(http: Http, symbols: list[str], view: MarketView) -> None:
    """Keep ``view.last`` at each symbol's last trade, for as long as the simulator runs."""
    streams = "/".join(f"{s.lower()}@trade" for s in symbols)
    url = f"{http.ws_url}/stream?streams={streams}"
    pause = 0.5
    while True:
        try:
            async with http.session.ws_connect(url, heartbeat=30) as ws:
                pause = 0.5
                # trades that happened while the stream was down: the last one of each symbol
                view.last.update(await last_prices(http, symbols))
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    data = json_object(message.data).get("data")
                    if isinstance(data, dict) and data.get("e") == "trade":
                        view.last[str(data["s"])] = Decimal(data["p"])
                        view.trades += 1
        except (aiohttp.ClientError, OSError, TimeoutError, Unavailable, KeyError) as exc:
            log.debug("trade stream: %s", exc)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 5.0)
