"""An unmodified python-binance ``Client`` (pinned in pyproject.toml) trading against the gateway: only its base
URL and keys change (docs/api.md says how)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from binance import AsyncClient, BinanceSocketManager
from binance.client import Client
from binance.exceptions import BinanceAPIException
from binance.ws.websocket_api import WebsocketAPI

from tests.gateways.conftest import Exchange

SYM = "BTCUSDT"


@pytest.fixture
def clients(exchange: Exchange) -> Iterator[dict[int, Client]]:
    made = {}
    for account, (key, secret) in exchange.keys.items():
        # ping=False: the constructor would otherwise ping binance.com before API_URL can be changed
        client = Client(key, secret, ping=False)
        client.API_URL = exchange.url + "/api"  # the client appends /v3/<endpoint>
        client.MARGIN_API_URL = exchange.url + "/sapi"  # and /v1/<endpoint> (the trade fees)
        made[account] = client
    yield made
    for client in made.values():
        client.close_connection()
    # the constructor made this thread an event loop (for its WebSocket API) when it had none: close it, or the
    # loop and its self-pipe are left to the garbage collector (a ResourceWarning, an error here)
    loop = made[1].loop
    if not loop.is_running():
        loop.close()
        asyncio.set_event_loop(None)


@pytest.mark.timeout(60)
def test_a_whole_order_life_cycle_through_python_binance(clients: dict[int, Client]) -> None:
    maker, taker = clients[1], clients[2]
    info = maker.get_exchange_info()
    (btc,) = [s for s in info["symbols"] if s["symbol"] == SYM]
    assert "MARKET" in btc["orderTypes"]
    balances = {b["asset"]: b for b in maker.get_account()["balances"]}
    assert balances["USDT"] == {"asset": "USDT", "free": "10000.00000000", "locked": "0.00000000"}

    sell = maker.create_order(symbol=SYM, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.03",
                              price="1000")  # fmt: skip
    assert (sell["status"], sell["origQty"], sell["clientOrderId"][:10]) == ("NEW", "0.03000000", "x-HNA2TXFJ")
    assert [o["orderId"] for o in maker.get_open_orders(symbol=SYM)] == [sell["orderId"]]

    bought = taker.create_order(symbol=SYM, side="BUY", type="MARKET", quantity="0.01")
    assert (bought["status"], bought["executedQty"], bought["cummulativeQuoteQty"]) == ("FILLED", "0.01000000",
                                                                                        "10.00000000")  # fmt: skip
    fills = [(f["price"], f["qty"], f["commissionAsset"]) for f in bought["fills"]]
    assert fills == [("1000.00000000", "0.01000000", "BTC")]
    by_cost = taker.order_market_buy(symbol=SYM, quoteOrderQty="5")  # python-binance's own helper
    assert (by_cost["executedQty"], by_cost["origQuoteOrderQty"]) == ("0.00500000", "5.00000000")

    got = maker.get_order(symbol=SYM, orderId=sell["orderId"])
    assert (got["status"], got["executedQty"]) == ("PARTIALLY_FILLED", "0.01500000")
    canceled = maker.cancel_order(symbol=SYM, orderId=sell["orderId"])
    assert (canceled["status"], canceled["executedQty"]) == ("CANCELED", "0.01500000")
    assert maker.get_open_orders(symbol=SYM) == []

    trades = taker.get_my_trades(symbol=SYM)
    assert [(t["orderId"], t["qty"], t["isBuyer"], t["isMaker"]) for t in trades] == [
        (bought["orderId"], "0.01000000", True, False),
        (by_cost["orderId"], "0.00500000", True, False),
    ]
    after = {b["asset"]: b for b in maker.get_account()["balances"]}
    assert Decimal(after["BTC"]["free"]) == 10_000 - Decimal("0.015") and after["BTC"]["locked"] == "0.00000000"


@pytest.mark.timeout(60)
def test_errors_raise_binance_api_exception_with_binances_code(clients: dict[int, Client]) -> None:
    client = clients[3]
    with pytest.raises(BinanceAPIException) as unknown:
        client.cancel_order(symbol=SYM, orderId=987_654_321)
    assert (unknown.value.status_code, unknown.value.code) == (400, -2011)
    with pytest.raises(BinanceAPIException) as missing:
        client.get_order(symbol=SYM, orderId=987_654_321)
    assert missing.value.code == -2013
    with pytest.raises(BinanceAPIException) as poor:
        client.create_order(symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC", quantity="100", price="1000")
    assert (poor.value.code, poor.value.message) == (-2010, "Account has insufficient balance for requested action.")
    with pytest.raises(BinanceAPIException) as bad_filter:
        client.create_order(symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                            price="1000.001")  # fmt: skip
    assert (bad_filter.value.code, bad_filter.value.message) == (-1013, "Filter failure: PRICE_FILTER")


@pytest.mark.timeout(60)
def test_the_trade_fees_and_the_commission_rates(clients: dict[int, Client]) -> None:
    client = clients[3]
    assert client.get_trade_fee(symbol=SYM) == [{"symbol": SYM, "makerCommission": "0.00100000",
                                                 "takerCommission": "0.00100000"}]  # fmt: skip
    symbols = {s["symbol"] for s in client.get_exchange_info()["symbols"]}
    assert {f["symbol"] for f in client.get_trade_fee()} == symbols
    assert client.get_account()["commissionRates"]["maker"] == "0.00100000"


@pytest.mark.timeout(60)
def test_python_binance_user_socket_follows_an_order_live(exchange: Exchange) -> None:
    """python-binance's BinanceSocketManager.user_socket (it subscribes with userDataStream.subscribe.signature over
    its WebSocket API client): the executionReport and outboundAccountPosition events of an order's life, with only
    the URLs changed."""
    key, secret = exchange.keys[2]

    async def scenario() -> list[dict[str, Any]]:
        ws_url = exchange.url.replace("http://", "ws://") + "/ws-api/v3"
        client = AsyncClient(key, secret)
        client.API_URL = exchange.url + "/api"
        client.ws_api = WebsocketAPI(url=ws_url, tld="com")  # its WebSocket API client, on the gateway
        got: list[dict[str, Any]] = []
        try:
            async with BinanceSocketManager(client).user_socket() as user:
                order = await client.create_order(symbol=SYM, side="SELL", type="LIMIT", timeInForce="GTC",
                                                  quantity="0.01", price="1000",
                                                  newClientOrderId="pb-live")  # fmt: skip
                await client.cancel_order(symbol=SYM, orderId=order["orderId"])
                while len(got) < 4:
                    got.append(await asyncio.wait_for(user.recv(), 10))
        finally:
            await client.close_connection()
        return got

    events = asyncio.run(scenario())
    assert [(e["e"], e.get("x"), e.get("c")) for e in events] == [
        ("executionReport", "NEW", "pb-live"),
        ("outboundAccountPosition", None, None),
        ("executionReport", "CANCELED", "pb-live"),
        ("outboundAccountPosition", None, None),
    ]
    assert events[1]["B"] == [{"a": "BTC", "f": events[1]["B"][0]["f"], "l": "0.01000000"}]  # the sell's lock
