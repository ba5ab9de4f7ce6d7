"""The raw protocol with hand-signed requests: what each bad input gets (HTTP status and Binance code), signing
with HMAC and Ed25519, and accounts kept apart."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any
from unittest.mock import ANY
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateways.binance import errors
from gateways.binance.limits import Limits
from gateways.http.app import REDIS_CONNECTIONS
from tests.gateways.conftest import Exchange, ed25519_key, new_account_key
from wire.config import Settings


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def send(ex: Exchange, method: str, path: str, query: str = "", body: str = "",
         key: str | None = None) -> tuple[int, Any]:  # fmt: skip
    url = ex.url + path + (f"?{query}" if query else "")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if key is not None:
        headers["X-MBX-APIKEY"] = key
    request = urllib.request.Request(url, data=body.encode() if body else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:  # it holds the connection
            return exc.code, json.loads(exc.read())


def signed(ex: Exchange, method: str, path: str, params: dict[str, Any], account: int = 1,
           secret: str | None = None, **override: Any) -> tuple[int, Any]:  # fmt: skip
    """A request signed as a Binance client signs it: timestamp, params, recvWindow, then the HMAC signature."""
    key, own_secret = ex.keys[account]
    payload = urlencode({"timestamp": now_ms(), **params, **override})
    signature = hmac.new((secret or own_secret).encode(), payload.encode(), hashlib.sha256).hexdigest()
    payload += f"&signature={signature}"
    if method in ("GET", "DELETE"):
        return send(ex, method, path, query=payload, key=key)
    return send(ex, method, path, body=payload, key=key)


LIMIT = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01",
         "price": "1000"}  # fmt: skip


@pytest.mark.parametrize(
    ("params", "status", "code", "msg"),
    [
        ({"symbol": "DOGEUSDT"}, 400, -1121, "Invalid symbol."),
        ({"side": "UP"}, 400, -1117, "Invalid side."),
        ({"type": "STOP"}, 400, -1116, "Invalid orderType."),
        ({"timeInForce": "GTD"}, 400, -1115, "Invalid timeInForce."),
        ({"timeInForce": ""}, 400, -1102, "Mandatory parameter 'timeInForce'"),
        ({"price": "1000.001"}, 400, -1013, "Filter failure: PRICE_FILTER"),
        ({"price": "-5"}, 400, -1100, "Illegal characters found in parameter 'price'"),
        ({"quantity": "0.000001"}, 400, -1013, "Filter failure: LOT_SIZE"),
        ({"quantity": "1e-3"}, 400, -1100, "Illegal characters found in parameter 'quantity'"),
        ({"quantity": "0.00001", "price": "100"}, 400, -1013, "Filter failure: NOTIONAL"),
        ({"side": "BUY", "quantity": "9000"}, 400, -2010, "Account has insufficient balance for requested action."),
        ({"newClientOrderId": "has space"}, 400, -1100, "client order id is 1 to 36 characters"),
        ({"newOrderRespType": "MAX"}, 400, -1106, "newOrderRespType"),
        ({"selfTradePreventionMode": "SOMETIMES"}, 400, -1100, "selfTradePreventionMode"),
        ({"selfTradePreventionMode": "DECREMENT"}, 400, -1013, "does not allow the specified self-trade prevention"),
        ({"type": "MARKET", "timeInForce": ""}, 400, -1106, "Parameter 'price' sent when not required."),
        ({"type": "MARKET", "timeInForce": "", "price": "", "quoteOrderQty": "5"}, 400, -1106, "quoteOrderQty"),
        (
            {
                "type": "MARKET",
                "side": "BUY",
                "timeInForce": "",
                "price": "",
                "quantity": "",
                "quoteOrderQty": "5.123456789",
            },
            400,
            -1111,
            "Precision is over the maximum",
        ),
        # what Mercury does not offer is refused, never placed as a plainer order than the one meant
        ({"icebergQty": "0.001"}, 400, -2010, "Iceberg orders are not supported for this symbol."),
        ({"stopPrice": "900"}, 400, -1106, "Parameter 'stopPrice' sent when not required."),
        ({"trailingDelta": "100"}, 400, -1106, "Parameter 'trailingDelta' sent when not required."),
        ({"pegPriceType": "PRIMARY_PEG"}, 400, -1106, "Parameter 'pegPriceType' sent when not required."),
        ({"type": "LIMIT_MAKER", "timeInForce": ""}, 200, 0, ""),
    ],
)
def test_a_new_order_with_bad_input_gets_binances_code(
    exchange: Exchange, params: dict[str, str], status: int, code: int, msg: str
) -> None:
    sent = {k: v for k, v in {**LIMIT, **params}.items() if v != ""}
    got_status, body = signed(exchange, "POST", "/api/v3/order", sent)
    assert got_status == status, body
    if code:
        assert body["code"] == code and msg in body["msg"], body


def test_signing_and_timing_errors(exchange: Exchange) -> None:
    key, _ = exchange.keys[1]
    assert send(exchange, "GET", "/api/v3/account", query=f"timestamp={now_ms()}") == (
        401, {"code": -2014, "msg": "API-key format invalid."})  # fmt: skip
    status, body = send(exchange, "GET", "/api/v3/account", query=f"timestamp={now_ms()}&signature=00",
                        key="A" * 64)  # fmt: skip
    assert (status, body["code"]) == (401, -2015)
    status, body = signed(exchange, "GET", "/api/v3/account", {}, secret="wrong")
    assert (status, body) == (400, {"code": -1022, "msg": "Signature for this request is not valid."})
    status, body = send(exchange, "GET", "/api/v3/account", query=f"timestamp={now_ms()}", key=key)
    assert (status, body["code"]) == (400, -1102) and "'signature'" in body["msg"]
    status, body = signed(exchange, "GET", "/api/v3/account", {}, timestamp=now_ms() - 6_000)  # default window 5 s
    assert (status, body["code"]) == (400, -1021)
    status, body = signed(exchange, "GET", "/api/v3/account", {"recvWindow": 10_000}, timestamp=now_ms() - 6_000)
    assert status == 200, body
    status, body = signed(exchange, "GET", "/api/v3/account", {}, timestamp=now_ms() + 5_000)
    assert (status, body["code"]) == (400, -1021)
    status, body = signed(exchange, "GET", "/api/v3/account", {"recvWindow": 70_000})
    assert (status, body["code"]) == (400, -1131)
    # Binance's microseconds: a timestamp in µs, a recvWindow with up to three decimals
    status, body = signed(exchange, "GET", "/api/v3/account", {}, timestamp=time.time_ns() // 1000)
    assert status == 200, body
    status, body = signed(exchange, "GET", "/api/v3/account", {}, timestamp=time.time_ns() // 1000 - 6_000_000)
    assert (status, body["code"]) == (400, -1021)  # 6 s old in µs: outside the default 5 s
    status, body = signed(exchange, "GET", "/api/v3/account", {"recvWindow": "6500.125"},
                          timestamp=now_ms() - 6_000)  # fmt: skip
    assert status == 200, body
    for window in ("5000.1234", "1e4", "-5", "0"):
        status, body = signed(exchange, "GET", "/api/v3/account", {"recvWindow": window})
        assert (status, body["code"]) == (400, -1100) and "recvWindow" in body["msg"], (window, body)
    status, body = signed(exchange, "GET", "/api/v3/account", {"recvWindow": "60000.001"})
    assert (status, body["code"]) == (400, -1131)
    status, body = send(exchange, "GET", "/api/v3/account", query="timestamp=1&timestamp=2&signature=x", key=key)
    assert (status, body["code"]) == (400, -1101)
    status, body = send(exchange, "GET", "/api/v3/account", query=f"timestamp={now_ms()}&signature=%C2%A9", key=key)
    assert (status, body["code"]) == (400, -1022)  # a non-ASCII signature (schemathesis found a 500 here)
    status, body = signed(exchange, "GET", "/api/v3/myTrades", {"symbol": "BTCUSDT", "startTime": 2**62})
    assert (status, body["code"]) == (400, -1100)  # past what a time can be (schemathesis found a 500 here)
    status, body = send(exchange, "POST", "/api/v3/order", body="%zz=&&=", key=key)
    assert status == 400 and body["code"] in (-1100, -1102)


def test_a_replayed_order_request_is_refused_and_places_nothing(exchange: Exchange) -> None:
    key, secret = exchange.keys[1]
    payload = urlencode({"timestamp": now_ms(), **LIMIT, "price": "1234.56", "recvWindow": 10_000})
    payload += "&signature=" + hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    status, first = send(exchange, "POST", "/api/v3/order", body=payload, key=key)
    assert status == 200, first
    status, again = send(exchange, "POST", "/api/v3/order", body=payload, key=key)  # the same bytes, in the window
    assert (status, again) == (400, {"code": -1022, "msg": errors.REPLAYED.msg})
    status, orders = signed(exchange, "GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert [o["orderId"] for o in orders if o["price"] == "1234.56000000"] == [first["orderId"]]
    cancel = urlencode({"timestamp": now_ms(), "symbol": "BTCUSDT", "orderId": first["orderId"]})
    cancel += "&signature=" + hmac.new(secret.encode(), cancel.encode(), hashlib.sha256).hexdigest()
    assert send(exchange, "DELETE", "/api/v3/order", query=cancel, key=key)[0] == 200
    assert send(exchange, "DELETE", "/api/v3/order", query=cancel, key=key)[1]["code"] == -1022
    # a query may be sent twice, as on Binance: it changes nothing
    query = urlencode({"timestamp": now_ms()})
    query += "&signature=" + hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    assert send(exchange, "GET", "/api/v3/account", query=query, key=key)[0] == 200
    assert send(exchange, "GET", "/api/v3/account", query=query, key=key)[0] == 200


def test_a_burst_of_more_requests_than_redis_connections_waits_for_one_and_gets_no_500(exchange: Exchange) -> None:
    """Each request that changes orders claims its signature in Redis. With more in flight at once than the
    gateway's Redis connections, they wait for a free one: every cancel of an unknown order gets -2011, none a 500
    (redis-py's default pool refused the 101st connection, and the gateway answered 500 -1000 under load)."""
    key, secret = exchange.keys[2]
    n = 3 * REDIS_CONNECTIONS
    queries = []
    for i in range(n):
        query = urlencode({"timestamp": now_ms(), "symbol": "BTCUSDT", "orderId": 10**12 + i, "recvWindow": 30_000})
        queries.append(query + "&signature=" + hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest())
    host, port = exchange.url.removeprefix("http://").split(":")

    async def burst() -> list[tuple[int, Any]]:
        # every connection open first, then every request written before any answer is read: all in flight at once
        connections = [await asyncio.open_connection(host, int(port)) for _ in queries]
        for (_, writer), query in zip(connections, queries, strict=True):
            writer.write(f"DELETE /api/v3/order?{query} HTTP/1.1\r\nHost: {host}\r\nX-MBX-APIKEY: {key}\r\n"
                         "Connection: close\r\n\r\n".encode())  # fmt: skip
        answers = []
        for reader, writer in connections:
            head, _, body = (await reader.read()).partition(b"\r\n\r\n")
            answers.append((int(head.split()[1]), json.loads(body)))
            writer.close()
        return answers

    assert signed(exchange, "GET", "/api/v3/account", {}, account=2)[0] == 200  # the key in the gateway's cache
    answers = asyncio.run(burst())
    assert sorted({(status, body["code"]) for status, body in answers}) == [(400, -2011)]


def test_amounts_are_plain_decimal_strings_with_the_assets_places(exchange: Exchange) -> None:
    status, account = signed(exchange, "GET", "/api/v3/account", {}, account=3)
    assert status == 200
    usdt = next(b for b in account["balances"] if b["asset"] == "ETH")
    assert usdt == {"asset": "ETH", "free": "10000.00000000", "locked": "0.00000000"}  # not "0E-8"


def test_times_in_microseconds_select_as_the_same_times_in_milliseconds(exchange: Exchange) -> None:
    status, placed = signed(exchange, "POST", "/api/v3/order", {**LIMIT, "price": "1001", "newOrderRespType": "RESULT"},
                            account=1)  # fmt: skip
    assert status == 200, placed
    t = placed["workingTime"]  # ms
    try:
        for start, end, found in ((t, t, True), (t * 1000, t * 1000 + 999, True), (t * 1000 + 1000, None, False),
                                  (t - 1000, t * 1000 - 1, False)):  # fmt: skip
            window = {"startTime": start} | ({} if end is None else {"endTime": end})
            status, orders = signed(exchange, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", **window}, account=1)
            assert status == 200, orders
            assert (placed["orderId"] in [o["orderId"] for o in orders]) is found, (window, orders)
    finally:
        signed(exchange, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]}, account=1)


def test_omit_zero_balances_lists_only_what_the_account_holds(exchange: Exchange) -> None:
    """An account funded with USDT only (account 7, an Ed25519 key): every asset of the venue, or with
    omitZeroBalances=true just USDT; a value that is not a boolean gets -1100."""
    key, private = new_account_key(exchange, 7, 5 * 10**8, "omit")

    def account(**params: str) -> tuple[int, Any]:
        payload = urlencode({"timestamp": now_ms(), **params})
        signature = base64.b64encode(private.sign(payload.encode())).decode()
        return send(exchange, "GET", "/api/v3/account", query=f"{payload}&{urlencode({'signature': signature})}",
                    key=key)  # fmt: skip

    deadline = time.monotonic() + 5
    while (every := account())[1]["balances"] == [] or not any(
        b["free"] != "0.00000000" for b in every[1]["balances"]
    ):  # the deposit reaches the gateway's state a moment after its ack
        assert time.monotonic() < deadline, every
        time.sleep(0.05)
    assert [b["asset"] for b in every[1]["balances"]] == ["BTC", "ETH", "USDT"]
    usdt = {"asset": "USDT", "free": "5.00000000", "locked": "0.00000000"}
    assert account(omitZeroBalances="true") == (200, {**every[1], "balances": [usdt], "updateTime": ANY})
    assert account(omitZeroBalances="FALSE")[1]["balances"] == every[1]["balances"]
    status, body = account(omitZeroBalances="yes")
    assert (status, body["code"]) == (400, -1100) and "omitZeroBalances" in body["msg"]


def test_commission_rates_in_binances_shapes(exchange: Exchange) -> None:
    """GET /api/v3/account/commission and GET /sapi/v1/asset/tradeFee, the symbol's rates (no override here)."""
    status, got = signed(exchange, "GET", "/api/v3/account/commission", {"symbol": "BTCUSDT"}, account=3)
    rates = {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000", "seller": "0.00000000"}
    assert (status, got["symbol"], got["standardCommission"]) == (200, "BTCUSDT", rates), got
    assert got["taxCommission"]["maker"] == "0.00000000" and got["discount"]["enabledForAccount"] is False
    status, fees = signed(exchange, "GET", "/sapi/v1/asset/tradeFee", {"symbol": "ETHUSDT"}, account=3)
    assert (status, fees) == (200, [{"symbol": "ETHUSDT", "makerCommission": "0.00100000",
                                     "takerCommission": "0.00100000"}])  # fmt: skip
    assert signed(exchange, "GET", "/api/v3/account/commission", {}, account=3)[1]["code"] == -1102
    assert signed(exchange, "GET", "/sapi/v1/asset/tradeFee", {"symbol": "NOPE"}, account=3)[1]["code"] == -1121
    assert send(exchange, "GET", "/sapi/v1/asset/tradeFee")[1]["code"] == -2014  # signed: no key, no answer


def test_exchange_info_lists_the_rate_limits_and_the_symbols_asked_for(exchange: Exchange) -> None:
    status, info = send(exchange, "GET", "/api/v3/exchangeInfo")
    assert status == 200 and info["rateLimits"] == Limits.of(Settings()).advertised()  # what the gateway enforces
    assert [r["rateLimitType"] for r in info["rateLimits"]] == ["REQUEST_WEIGHT", "ORDERS", "ORDERS"]
    status, some = send(exchange, "GET", "/api/v3/exchangeInfo", query="symbols=%5B%22ETHUSDT%22%2C%22BTCUSDT%22%5D")
    assert (status, [s["symbol"] for s in some["symbols"]]) == (200, ["ETHUSDT", "BTCUSDT"])
    filters = {f["filterType"]: f for f in some["symbols"][1]["filters"]}  # padded to the assets' 8 decimals
    assert (filters["PRICE_FILTER"]["tickSize"], filters["LOT_SIZE"]["stepSize"]) == ("0.01000000", "0.00001000")
    notional = filters["NOTIONAL"]
    assert (notional["minNotional"], notional["maxNotional"]) == ("5.00000000", "90000000000.00000000")
    assert send(exchange, "GET", "/api/v3/exchangeInfo", query="symbols=%5B%22NOPE%22%5D")[1]["code"] == -1121
    assert send(exchange, "GET", "/api/v3/exchangeInfo", query="symbols=BTCUSDT")[1]["code"] == -1100  # not JSON
    both = "symbol=BTCUSDT&symbols=%5B%22BTCUSDT%22%5D"
    assert send(exchange, "GET", "/api/v3/exchangeInfo", query=both)[1]["code"] == -1101


def test_unknown_endpoints_and_methods_get_json_errors(exchange: Exchange) -> None:
    assert send(exchange, "GET", "/api/v3/nothing") == (404, {"code": -1000, "msg": "Unknown endpoint."})
    status, body = send(exchange, "PUT", "/api/v3/order")
    assert (status, body["code"]) == (405, -1000)
    assert send(exchange, "GET", "/api/v3/ping") == (200, {})
    status, body = send(exchange, "GET", "/api/v3/exchangeInfo", query="symbol=NOPE")
    assert (status, body["code"]) == (400, -1121)


def test_an_account_never_sees_or_touches_another_accounts_orders(exchange: Exchange) -> None:
    status, order = signed(exchange, "POST", "/api/v3/order", LIMIT, account=1)
    assert status == 200 and order["status"] == "NEW", order
    query = {"symbol": "BTCUSDT", "orderId": order["orderId"]}
    assert signed(exchange, "GET", "/api/v3/order", query, account=2)[1]["code"] == -2013
    assert signed(exchange, "DELETE", "/api/v3/order", query, account=2)[1]["code"] == -2011
    assert signed(exchange, "GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, account=2) == (200, [])
    assert signed(exchange, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT"}, account=2) == (200, [])
    status, mine = signed(exchange, "GET", "/api/v3/order", query, account=1)
    assert (status, mine["status"], mine["clientOrderId"]) == (200, "NEW", order["clientOrderId"])
    status, canceled = signed(exchange, "DELETE", "/api/v3/order", query, account=1)
    assert (status, canceled["status"]) == (200, "CANCELED")


def test_ack_mode_answers_once_journaled_with_the_id_the_engine_gives_the_order(exchange: Exchange) -> None:
    params = {**LIMIT, "newOrderRespType": "ACK", "newClientOrderId": "ack-1"}
    status, ack = signed(exchange, "POST", "/api/v3/order", params)
    assert status == 200 and ack["clientOrderId"] == "ack-1" and "status" not in ack
    assert ack["orderId"] > 0
    deadline = time.monotonic() + 5
    while True:
        status, found = signed(exchange, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": ack["orderId"]})
        if status == 200 or time.monotonic() > deadline:
            break
    assert (status, found["status"], found["price"], found["clientOrderId"]) == (200, "NEW", "1000.00000000", "ack-1")
    status, by_client_id = signed(exchange, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "ack-1"})
    assert (status, by_client_id["orderId"]) == (200, ack["orderId"])
    # ids are the commands' sequence numbers: the next order, in RESULT mode, has a larger one
    status, later = signed(exchange, "POST", "/api/v3/order", {**LIMIT, "newOrderRespType": "RESULT"})
    assert status == 200 and later["orderId"] > ack["orderId"]
    assert signed(exchange, "POST", "/api/v3/order/test", LIMIT) == (200, {})


def test_an_ed25519_key_signs_requests(exchange: Exchange) -> None:
    key, private = ed25519_key(exchange, 3, "ed")
    payload = urlencode({"timestamp": now_ms()})
    signature = base64.b64encode(private.sign(payload.encode())).decode()
    status, body = send(exchange, "GET", "/api/v3/account", query=f"{payload}&{urlencode({'signature': signature})}",
                        key=key)  # fmt: skip
    assert status == 200 and body["uid"] == 3, body
    forged = base64.b64encode(Ed25519PrivateKey.generate().sign(payload.encode())).decode()
    status, body = send(exchange, "GET", "/api/v3/account", query=f"{payload}&{urlencode({'signature': forged})}",
                        key=key)  # fmt: skip
    assert (status, body["code"]) == (400, -1022)


def test_cancel_replace_answers_each_outcome_as_binance_does(exchange: Exchange) -> None:
    status, order = signed(exchange, "POST", "/api/v3/order", {**LIMIT, "newClientOrderId": "cr-1"}, account=2)
    assert status == 200, order
    replace = {**LIMIT, "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": order["orderId"], "quantity": "0.005"}
    status, body = signed(exchange, "POST", "/api/v3/order/cancelReplace", replace, account=2)
    assert (status, body["cancelResult"], body["newOrderResult"]) == (200, "SUCCESS", "SUCCESS"), body
    assert body["cancelResponse"]["status"] == "CANCELED" and body["newOrderResponse"]["origQty"] == "0.00500000"
    # the order kept its place (a smaller quantity at the same price): the same id
    assert body["newOrderResponse"]["orderId"] == order["orderId"]
    status, body = signed(exchange, "POST", "/api/v3/order/cancelReplace", {**replace, "cancelOrderId": 999_999},
                          account=2)  # fmt: skip
    assert (status, body["code"], body["data"]["cancelResult"], body["data"]["newOrderResult"]) == (
        400, -2022, "FAILURE", "NOT_ATTEMPTED")  # fmt: skip
    assert body["data"]["cancelResponse"] == {"code": -2011, "msg": "Unknown order sent."}
    status, body = signed(exchange, "POST", "/api/v3/order/cancelReplace",
                          {**replace, "cancelOrderId": 999_999, "cancelReplaceMode": "ALLOW_FAILURE"},
                          account=2)  # fmt: skip
    assert (status, body["code"], body["data"]["cancelResult"], body["data"]["newOrderResult"]) == (
        409, -2021, "FAILURE", "SUCCESS")  # fmt: skip
    status, body = signed(exchange, "POST", "/api/v3/order/cancelReplace", {**replace, "cancelReplaceMode": "NEVER"},
                          account=2)  # fmt: skip
    assert (status, body["code"]) == (400, -1100)
    # a condition only the engine could keep, which it has not: refused, and the order stays
    restricted = {**replace, "cancelRestrictions": "ONLY_NEW"}
    status, body = signed(exchange, "POST", "/api/v3/order/cancelReplace", restricted, account=2)
    assert (status, body["code"]) == (400, -1106) and "cancelRestrictions" in body["msg"]
    ref = {"symbol": "BTCUSDT", "orderId": order["orderId"]}
    status, body = signed(exchange, "DELETE", "/api/v3/order", {**ref, "cancelRestrictions": "ONLY_NEW"}, account=2)
    assert (status, body["code"]) == (400, -1106)
    assert signed(exchange, "GET", "/api/v3/order", ref, account=2)[1]["status"] == "NEW"
    assert signed(exchange, "DELETE", "/api/v3/order", ref, account=2)[1]["status"] == "CANCELED"


def test_an_order_reports_its_own_self_trade_prevention_mode(exchange: Exchange) -> None:
    """The answer, a query from the live state, a query from history and the cancel say the mode the order was
    placed with (they all said EXPIRE_TAKER)."""
    params = {**LIMIT, "selfTradePreventionMode": "EXPIRE_BOTH", "newClientOrderId": "stp-both"}
    status, placed = signed(exchange, "POST", "/api/v3/order", params, account=1)
    assert (status, placed["selfTradePreventionMode"]) == (200, "EXPIRE_BOTH"), placed
    ref = {"symbol": "BTCUSDT", "orderId": placed["orderId"]}
    assert signed(exchange, "GET", "/api/v3/order", ref, account=1)[1]["selfTradePreventionMode"] == "EXPIRE_BOTH"
    status, canceled = signed(exchange, "DELETE", "/api/v3/order", ref, account=1)
    assert (status, canceled["selfTradePreventionMode"]) == (200, "EXPIRE_BOTH")
    closed = signed(exchange, "GET", "/api/v3/order", ref, account=1)[1]  # from PostgreSQL now
    assert (closed["status"], closed["selfTradePreventionMode"]) == ("CANCELED", "EXPIRE_BOTH")
    plain = signed(exchange, "POST", "/api/v3/order", {**LIMIT, "newOrderRespType": "RESULT"}, account=1)[1]
    assert plain["selfTradePreventionMode"] == "EXPIRE_TAKER"  # the default
    signed(exchange, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": plain["orderId"]}, account=1)


def test_a_market_sell_by_quote_amount_sells_the_most_base_the_amount_covers(exchange: Exchange) -> None:
    bid = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.05",
           "price": "900"}  # fmt: skip
    status, resting = signed(exchange, "POST", "/api/v3/order", bid, account=3)
    assert status == 200, resting
    sell = {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quoteOrderQty": "22.5"}
    status, full = signed(exchange, "POST", "/api/v3/order", sell, account=2)
    assert status == 200, full
    assert (full["status"], full["executedQty"], full["cummulativeQuoteQty"], full["origQuoteOrderQty"]) == (
        "FILLED", "0.02500000", "22.50000000", "22.50000000")  # fmt: skip
    fills = [(f["price"], f["qty"], f["commissionAsset"]) for f in full["fills"]]
    assert fills == [("900.00000000", "0.02500000", "USDT")]
    # 9.05 USDT at 900: 0.01005 BTC fetches 9.045, one more step (0.00001) would pass the amount
    status, result = signed(exchange, "POST", "/api/v3/order", {**sell, "quoteOrderQty": "9.05",
                                                               "newOrderRespType": "RESULT"}, account=2)  # fmt: skip
    assert status == 200, result
    assert (result["origQty"], result["executedQty"], result["cummulativeQuoteQty"], result["origQuoteOrderQty"]) == (
        "0.01005000", "0.01005000", "9.04500000", "9.05000000")  # fmt: skip
    assert "fills" not in result
    status, canceled = signed(exchange, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": resting["orderId"]},
                              account=3)  # fmt: skip
    assert (status, canceled["executedQty"]) == (200, "0.03505000")
    status, body = signed(exchange, "POST", "/api/v3/order", sell, account=2)  # no bids left: not one lot to sell
    assert (status, body["code"], body["msg"]) == (400, -1013, "Filter failure: MARKET_LOT_SIZE")


def test_the_gateway_tells_the_trading_ui_where_market_data_is(exchange: Exchange) -> None:
    status, config = send(exchange, "GET", "/ui-config.json")
    assert status == 200 and config["marketRest"].startswith("http://127.0.0.1:")
    assert config["marketWs"].startswith("ws://127.0.0.1:")
    # Prometheus and the inference service: only the front door, which runs beside them, names them
    assert "prometheus" not in config and "research" not in config
    request = urllib.request.Request(exchange.url + "/", method="GET")
    opener = urllib.request.build_opener(NoRedirect())
    try:
        opener.open(request, timeout=5)
        raise AssertionError("no redirect")
    except urllib.error.HTTPError as exc:
        with exc:
            assert exc.code == 307 and exc.headers["location"] == "/ui/"


def weight_spent(ex: Exchange, path: str, params: dict[str, Any]) -> int:
    """The request weight one signed GET spent: the rise of X-MBX-USED-WEIGHT-1M over a ping (weight 1) before it."""

    def used(path: str, query: str) -> int:
        request = urllib.request.Request(ex.url + path + query, headers={"X-MBX-APIKEY": ex.keys[1][0]})
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.headers["X-MBX-USED-WEIGHT-1M"])

    payload = urlencode({"timestamp": now_ms(), **params})
    payload += "&signature=" + hmac.new(ex.keys[1][1].encode(), payload.encode(), hashlib.sha256).hexdigest()
    return -used("/api/v3/ping", "") + used(path, "?" + payload)


def test_some_requests_weigh_by_what_they_ask_for_as_on_binance(exchange: Exchange) -> None:
    if time.time() % 60 > 50:  # both requests of each pair in one minute's window
        time.sleep(60.1 - time.time() % 60)
    assert weight_spent(exchange, "/api/v3/openOrders", {"symbol": "BTCUSDT"}) == 6
    assert weight_spent(exchange, "/api/v3/openOrders", {}) == 80
    assert weight_spent(exchange, "/api/v3/openOrders", {"symbol": ""}) == 80  # empty: every symbol's, as answered
    assert weight_spent(exchange, "/api/v3/myTrades", {"symbol": "BTCUSDT"}) == 20
    assert weight_spent(exchange, "/api/v3/myTrades", {"symbol": "BTCUSDT", "orderId": 1}) == 5
    assert weight_spent(exchange, "/api/v3/myPreventedMatches", {"symbol": "BTCUSDT", "preventedMatchId": 1}) == 2
    assert weight_spent(exchange, "/api/v3/myPreventedMatches", {"symbol": "BTCUSDT", "orderId": 1}) == 20
    assert weight_spent(exchange, "/api/v3/allOrders", {"symbol": "BTCUSDT"}) == 20


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_the_order_rate_limits_count_the_accounts_new_orders(exchange: Exchange) -> None:
    """GET /api/v3/rateLimit/order: each order limit with the account's count. Last in this module: it places an
    order (then cancels it), which other tests' lists of orders would show."""
    status, before = signed(exchange, "GET", "/api/v3/rateLimit/order", {}, account=3)
    assert status == 200 and [(r["interval"], r["limit"]) for r in before] == [("SECOND", 100), ("DAY", 200_000)]
    status, _ = signed(exchange, "POST", "/api/v3/order", LIMIT, account=3)
    assert status == 200
    _, after = signed(exchange, "GET", "/api/v3/rateLimit/order", {}, account=3)
    assert after[1]["count"] == before[1]["count"] + 1  # the day's count (a 10 s window may have ended between)
    assert signed(exchange, "DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, account=3)[0] == 200
