"""ccxt.pro's user data stream (the WebSocket API's userDataStream.subscribe.signature, what ccxt 4.5.90 uses for
spot) following an order's life: watch_orders, watch_my_trades and watch_balance see what the engine did."""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt.pro
import pytest

from tests.gateways.conftest import Exchange
from tests.gateways.test_ccxt import SYM, client


def pro_client(exchange: Exchange, account: int) -> Any:
    key, secret = exchange.keys[account]
    sync = client(exchange, account)
    ws = exchange.url.replace("http://", "ws://")
    api = dict(sync.urls["api"])
    api["ws"] = {"spot": f"{ws}/ws", "margin": f"{ws}/ws", "ws-api": {"spot": f"{ws}/ws-api/v3"}}
    return ccxt.pro.binance({"apiKey": key, "secret": secret, "enableRateLimit": False, "urls": {"api": api},
                             "options": sync.options})  # fmt: skip


@pytest.mark.timeout(60)
def test_watch_orders_trades_and_balance_follow_an_order_live(exchange: Exchange) -> None:
    async def scenario() -> None:
        maker = pro_client(exchange, 1)
        taker = client(exchange, 2)
        try:
            await maker.load_markets()
            taker.load_markets()
            orders = asyncio.ensure_future(maker.watch_orders(SYM))
            trades = asyncio.ensure_future(maker.watch_my_trades(SYM))
            balance = asyncio.ensure_future(maker.watch_balance())
            await asyncio.sleep(0.5)  # subscribed (one ws-api socket, one subscription)
            sell = await maker.create_order(SYM, "limit", "sell", 0.01, 1000)
            (seen,) = await asyncio.wait_for(orders, 5)
            assert (seen["id"], seen["status"], seen["amount"], seen["filled"]) == (sell["id"], "open", 0.01, 0.0)
            locked = await asyncio.wait_for(balance, 5)
            assert locked["BTC"]["used"] == 0.01

            # each watch_* resolves with the next update after it is called: call them before the fill
            orders = asyncio.ensure_future(maker.watch_orders(SYM))
            balance = asyncio.ensure_future(maker.watch_balance())
            await asyncio.sleep(0.1)
            taker.create_order(SYM, "market", "buy", 0.01)
            filled = await asyncio.wait_for(orders, 5)
            assert filled[-1]["id"] == sell["id"] and filled[-1]["status"] == "closed" and filled[-1]["filled"] == 0.01
            (trade,) = await asyncio.wait_for(trades, 5)
            assert (trade["order"], trade["side"], trade["takerOrMaker"], trade["amount"], trade["price"]) == (
                sell["id"], "sell", "maker", 0.01, 1000.0)  # fmt: skip
            assert trade["fee"] == {"cost": 0.01, "currency": "USDT"}
            after = await asyncio.wait_for(balance, 5)
            assert after["BTC"]["used"] == 0.0 and after["USDT"]["free"] == 10_000 + 10 - 0.01
        finally:
            await maker.close()

    asyncio.run(scenario())
