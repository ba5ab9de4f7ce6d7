"""Self-trade prevention as Binance reports it: an order response's ``preventedMatches`` and ``preventedQuantity``,
the expired order's ``preventedMatchId``, the user data stream's TRADE_PREVENTION reports with their prevented-match
fields, GET /api/v3/myPreventedMatches (and its parameter combinations; what each bad one gets), and the same
endpoint through ccxt's implicit method."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import ccxt
import pytest
import websockets

from tests.gateways.conftest import Exchange
from tests.gateways.test_rest import signed
from tests.gateways.test_ws_api import call, signed_params

SYMBOL = "BTCUSDT"


def order(exchange: Exchange, side: str, qty: str, price: str, **extra: str) -> dict[str, Any]:
    params = {"symbol": SYMBOL, "side": side, "type": "LIMIT", "timeInForce": "GTC", "quantity": qty, "price": price}
    status, body = signed(exchange, "POST", "/api/v3/order", {**params, **extra}, account=1)
    assert status == 200, body
    placed: dict[str, Any] = body
    return placed


def prevented(exchange: Exchange, account: int = 1, **params: Any) -> tuple[int, Any]:
    return signed(exchange, "GET", "/api/v3/myPreventedMatches", {"symbol": SYMBOL, **params}, account=account)


@pytest.mark.timeout(60)
def test_self_trade_prevention_is_reported_as_binance_reports_it(exchange: Exchange) -> None:
    async def scenario() -> tuple[dict[str, Any], ...]:
        url = exchange.url.replace("http://", "ws://") + "/ws-api/v3"
        async with websockets.connect(url) as ws:
            sub = await call(ws, "s", "userDataStream.subscribe.signature", signed_params(exchange, 1))
            assert sub["status"] == 200, sub
            first = order(exchange, "BUY", "0.01", "1000")
            second = order(exchange, "BUY", "0.02", "990")
            # sells into its own two bids: both expire (EXPIRE_MAKER) and the whole sell rests
            sell = order(exchange, "SELL", "0.05", "990", selfTradePreventionMode="EXPIRE_MAKER")
            # buys into its own ask: the buy expires (EXPIRE_TAKER, the default), the ask stays
            buy = order(exchange, "BUY", "0.03", "995")
            reports: list[dict[str, Any]] = []
            while len([r for r in reports if r.get("x") == "TRADE_PREVENTION"]) < 3:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if "event" in message and message["event"]["e"] == "executionReport":
                    reports.append(message["event"])
            listed = await call(ws, "p", "myPreventedMatches", signed_params(exchange, 1, symbol=SYMBOL,
                                                                            preventedMatchId=1))  # fmt: skip
            return first, second, sell, buy, listed, *[r for r in reports if r["x"] == "TRADE_PREVENTION"]

    first, second, sell, buy, listed, *reports = asyncio.run(scenario())

    assert (sell["status"], sell["executedQty"], sell["fills"]) == ("NEW", "0.00000000", [])
    assert sell["preventedMatches"] == [
        {"preventedMatchId": 1, "makerSymbol": SYMBOL, "makerOrderId": first["orderId"], "price": "1000.00000000",
         "makerPreventedQuantity": "0.01000000"},
        {"preventedMatchId": 2, "makerSymbol": SYMBOL, "makerOrderId": second["orderId"], "price": "990.00000000",
         "makerPreventedQuantity": "0.02000000"},
    ]  # fmt: skip
    assert "preventedQuantity" not in sell  # nothing of the sell itself was expired
    assert (buy["status"], buy["preventedQuantity"]) == ("EXPIRED_IN_MATCH", "0.03000000")
    assert buy["preventedMatches"] == [{"preventedMatchId": 3, "makerSymbol": SYMBOL, "makerOrderId": sell["orderId"],
                                        "price": "990.00000000", "takerPreventedQuantity": "0.03000000"}]  # fmt: skip

    status, expired = signed(exchange, "GET", "/api/v3/order", {"symbol": SYMBOL, "orderId": first["orderId"]})
    assert status == 200, expired
    assert (expired["status"], expired["preventedMatchId"], expired["preventedQuantity"]) == (
        "EXPIRED_IN_MATCH", 1, "0.01000000")  # fmt: skip
    status, resting = signed(exchange, "GET", "/api/v3/order", {"symbol": SYMBOL, "orderId": sell["orderId"]})
    assert (resting["status"], "preventedMatchId" in resting) == ("NEW", False)  # it lost nothing

    fields = [(r["i"], r["X"], r["v"], r["U"], r["A"], r["B"], r["u"]) for r in reports]
    assert fields == [
        (first["orderId"], "EXPIRED_IN_MATCH", 1, sell["orderId"], "0.01000000", "0.01000000", -1),
        (second["orderId"], "EXPIRED_IN_MATCH", 2, sell["orderId"], "0.02000000", "0.02000000", -1),
        (buy["orderId"], "EXPIRED_IN_MATCH", 3, sell["orderId"], "0.03000000", "0.03000000", -1),
    ]

    status, matches = prevented(exchange, orderId=sell["orderId"])  # the sell was taker twice and maker once
    assert status == 200, matches
    assert [m["preventedMatchId"] for m in matches] == [1, 2, 3]
    assert matches[2] == {
        "symbol": SYMBOL, "preventedMatchId": 3, "takerOrderId": buy["orderId"], "makerSymbol": SYMBOL,
        "makerOrderId": sell["orderId"], "tradeGroupId": -1, "selfTradePreventionMode": "EXPIRE_TAKER",
        "price": "990.00000000", "takerPreventedQuantity": "0.03000000", "transactTime": matches[2]["transactTime"],
    }  # fmt: skip
    assert matches[0]["selfTradePreventionMode"] == "EXPIRE_MAKER" and "takerPreventedQuantity" not in matches[0]
    assert [m["preventedMatchId"] for m in prevented(exchange, orderId=sell["orderId"], fromPreventedMatchId=2)[1]] == [
        2, 3]  # fmt: skip
    assert [m["preventedMatchId"] for m in prevented(exchange, orderId=sell["orderId"], limit=1)[1]] == [1]
    assert prevented(exchange, preventedMatchId=2)[1] == [matches[1]]
    assert (listed["status"], listed["result"]) == (200, [matches[0]])  # the WebSocket API's method: the same
    assert prevented(exchange, orderId=first["orderId"])[1] == [matches[0]]
    assert prevented(exchange, account=2, orderId=sell["orderId"]) == (200, [])  # another account's: not listed

    # ccxt calls it as any Binance endpoint it knows (an implicit method), signed the same way
    key, secret = exchange.keys[1]
    client = ccxt.binance({"apiKey": key, "secret": secret, "options": {"fetchCurrencies": False}})
    base = exchange.url + "/api/v3"
    client.urls["api"] = {**client.urls["api"], "public": base, "private": base}
    assert client.private_get_mypreventedmatches({"symbol": SYMBOL, "preventedMatchId": 3}) == [matches[2]]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, -1128),  # neither preventedMatchId nor orderId
        ({"preventedMatchId": 1, "orderId": 5}, 400, -1128),  # both
        ({"preventedMatchId": 1, "fromPreventedMatchId": 1}, 400, -1128),  # paging belongs to orderId
        ({"fromPreventedMatchId": 1}, 400, -1128),
        ({"orderId": 5, "limit": 0}, 400, -1100),
        ({"orderId": 5, "limit": 1001}, 400, -1100),
        ({"orderId": "x"}, 400, -1100),
        ({"symbol": "NOPE", "orderId": 5}, 400, -1121),
        ({"symbol": "", "orderId": 5}, 400, -1102),
    ],
)
def test_my_prevented_matches_with_bad_parameters_gets_binances_code(
    exchange: Exchange, params: dict[str, Any], status: int, code: int
) -> None:
    answer = prevented(exchange, **params)

    assert (answer[0], answer[1]["code"]) == (status, code), answer


def test_mode_none_trades_with_the_accounts_own_order_and_lists_both_sides(exchange: Exchange) -> None:
    """Binance's NONE: no prevention, a self-trade prints (both fees are paid); myTrades lists the fill once from
    each side, each with its own order. DECREMENT, a Binance mode Mercury does not offer, is refused as Binance
    refuses a mode the symbol does not allow."""
    status, info = signed(exchange, "GET", "/api/v3/exchangeInfo", {"symbol": SYMBOL})
    assert "NONE" in info["symbols"][0]["allowedSelfTradePreventionModes"]
    signed(exchange, "DELETE", "/api/v3/openOrders", {"symbol": SYMBOL}, account=1)  # the other test's ask rests
    ask = order(exchange, "SELL", "0.01", "1010")
    bid = order(exchange, "BUY", "0.01", "1010", selfTradePreventionMode="NONE")
    assert (bid["status"], bid["selfTradePreventionMode"], len(bid["fills"])) == ("FILLED", "NONE", 1), bid
    assert "preventedMatches" not in bid
    trade_id = bid["fills"][0]["tradeId"]
    status, mine = signed(exchange, "GET", "/api/v3/myTrades", {"symbol": SYMBOL, "fromId": trade_id})
    assert status == 200, mine
    sides = [(t["id"], t["orderId"], t["isBuyer"], t["isMaker"]) for t in mine if t["id"] == trade_id]
    assert sides == [(trade_id, ask["orderId"], False, True), (trade_id, bid["orderId"], True, False)]
    by_order = signed(exchange, "GET", "/api/v3/myTrades", {"symbol": SYMBOL, "orderId": bid["orderId"]})[1]
    assert [(t["orderId"], t["isBuyer"]) for t in by_order] == [(bid["orderId"], True)]
    # a page holds at most `limit` fills and never half a self-trade: paging on from the last id misses no side
    second = order(exchange, "BUY", "0.01", "1010")
    again = order(exchange, "SELL", "0.01", "1010", selfTradePreventionMode="NONE")
    assert again["status"] == "FILLED", again
    pages, from_id = [], trade_id
    while True:
        status, page = signed(exchange, "GET", "/api/v3/myTrades", {"symbol": SYMBOL, "fromId": from_id, "limit": 3})
        assert status == 200 and len(page) <= 3, page
        if not page:
            break
        pages.append([(t["id"], t["orderId"]) for t in page])
        from_id = page[-1]["id"] + 1
    second_id = again["fills"][0]["tradeId"]
    assert pages[:2] == [[(trade_id, ask["orderId"]), (trade_id, bid["orderId"])],
                         [(second_id, second["orderId"]), (second_id, again["orderId"])]], pages  # fmt: skip
    newest = signed(exchange, "GET", "/api/v3/myTrades", {"symbol": SYMBOL, "limit": 3})[1]
    assert [(t["id"], t["orderId"]) for t in newest] == pages[1], newest  # the newest whole trades within 3
    only = signed(exchange, "GET", "/api/v3/myTrades", {"symbol": SYMBOL, "fromId": second_id, "limit": 1})[1]
    assert [t["id"] for t in only] == [second_id, second_id]  # one self-trade with limit 1: both sides, not none
    params = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01",
              "price": "1000", "selfTradePreventionMode": "DECREMENT"}  # fmt: skip
    status, body = signed(exchange, "POST", "/api/v3/order", params, account=1)
    assert (status, body["code"]) == (400, -1013), body
