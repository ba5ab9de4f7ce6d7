"""An unmodified ccxt binance client (pinned in pyproject.toml) trading against the gateway, with the options
../shared/binance-subset.md gives; results are checked against what the engine did."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest

from tests.gateways.conftest import Exchange
from tests.harness import wait_for

SYM = "BTC/USDT"


def client(exchange: Exchange, account: int, **options: Any) -> ccxt.binance:
    key, secret = exchange.keys[account]
    base = exchange.url
    api = {"public": f"{base}/api/v3", "private": f"{base}/api/v3", "v1": f"{base}/api/v1"}
    api |= {name: f"{base}/sapi/v1" for name in ("sapi", "sapiV2", "sapiV3", "sapiV4")}
    return ccxt.binance(
        {
            "apiKey": key,
            "secret": secret,
            "enableRateLimit": False,
            "urls": {"api": api},
            "options": {
                "defaultType": "spot",
                "fetchCurrencies": False,
                "fetchMargins": False,
                "fetchMarkets": {"types": ["spot"]},
                "fetchOpenOrders": {"warnWithoutSymbol": False},
                **options,
            },
        }
    )


@pytest.mark.timeout(120)
def test_a_whole_order_life_cycle_through_ccxt(exchange: Exchange) -> None:
    maker, taker = client(exchange, 1), client(exchange, 2)
    markets = maker.load_markets()
    assert markets[SYM]["precision"]["price"] == 0.01 and markets[SYM]["limits"]["cost"]["min"] == 5.0

    balance = maker.fetch_balance()
    assert balance["USDT"]["free"] == 10_000 and balance["BTC"]["used"] == 0

    sell = maker.create_order(SYM, "limit", "sell", 0.05, 1000)
    assert (sell["status"], sell["filled"], sell["amount"], sell["price"]) == ("open", 0.0, 0.05, 1000.0)
    assert maker.fetch_balance()["BTC"]["used"] == 0.05  # the sell locks its base

    buy = taker.create_order(SYM, "market", "buy", 0.02)
    assert (buy["status"], buy["filled"], buy["cost"]) == ("closed", 0.02, 20.0)
    assert len(buy["trades"]) == 1 and buy["fee"]["currency"] == "BTC" and buy["fee"]["cost"] == 0.00002

    by_cost = taker.create_market_buy_order_with_cost(SYM, 10.0)  # quoteOrderQty
    assert (by_cost["status"], by_cost["filled"], by_cost["cost"]) == ("closed", 0.01, 10.0)

    (open_sell,) = maker.fetch_open_orders(SYM)
    assert (open_sell["id"], open_sell["filled"], open_sell["remaining"]) == (sell["id"], 0.03, 0.02)
    assert maker.fetch_order(sell["id"], SYM)["status"] == "open"

    with pytest.raises(ccxt.OrderImmediatelyFillable):
        taker.create_order(SYM, "limit", "buy", 0.01, 1000, {"postOnly": True})
    ioc = taker.create_order(SYM, "limit", "buy", 0.05, 1000, {"timeInForce": "IOC"})
    assert (ioc["status"], ioc["filled"]) == ("expired", 0.02)  # took the rest, the remainder expired
    fok = taker.create_order(SYM, "limit", "buy", 0.05, 1000, {"timeInForce": "FOK"})
    assert (fok["status"], fok["filled"]) == ("expired", 0.0)
    assert maker.fetch_order(sell["id"], SYM)["status"] == "closed"  # filled by the IOC: now from history

    bid = taker.create_order(SYM, "limit", "buy", 0.01, 900)
    edited = taker.edit_order(bid["id"], SYM, "limit", "buy", 0.02, 905)  # POST order/cancelReplace
    assert (edited["price"], edited["amount"], edited["status"]) == (905.0, 0.02, "open") and edited["id"] != bid["id"]
    assert taker.fetch_order(bid["id"], SYM)["status"] == "canceled"
    canceled = taker.cancel_order(edited["id"], SYM)
    assert canceled["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        taker.cancel_order(bid["id"], SYM)
    for price in (800, 810):
        taker.create_order(SYM, "limit", "buy", 0.01, price)
    assert len(taker.cancel_all_orders(SYM)) == 2
    assert taker.fetch_open_orders(SYM) == []

    trades = maker.fetch_my_trades(SYM)
    assert [(t["side"], t["amount"], t["price"], t["takerOrMaker"]) for t in trades] == [
        ("sell", 0.02, 1000.0, "maker"),
        ("sell", 0.01, 1000.0, "maker"),
        ("sell", 0.02, 1000.0, "maker"),
    ]
    fees = sum(Decimal(str(t["fee"]["cost"])) for t in trades)
    assert fees == Decimal("0.05")  # 10 bps of the 50 USDT the maker received
    after = maker.fetch_balance()
    assert after["BTC"]["total"] == 10_000 - 0.05 and after["USDT"]["total"] == 10_000 + 50 - 0.05


@pytest.mark.timeout(60)
def test_each_error_class_raises_the_ccxt_exception_the_subset_maps_it_to(exchange: Exchange) -> None:
    ex = client(exchange, 3)
    ex.load_markets()
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(SYM, "limit", "buy", 100, 1000)  # 100,000 USDT on 10,000
    with pytest.raises(ccxt.InvalidOrder):
        ex.create_order(SYM, "limit", "buy", 0.01, 200_000_000)  # above maxPrice: PRICE_FILTER
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
        ex.create_order(SYM, "limit", "buy", 0.00001, 1000)  # 0.01 USDT: under the minimum notional
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order("987654", SYM)
    wrong = client(exchange, 3)
    wrong.secret = "not-the-secret"
    with pytest.raises(ccxt.AuthenticationError):
        wrong.fetch_balance()
    stale = client(exchange, 3, timeDifference=120_000)  # its clock says two minutes ago
    with pytest.raises(ccxt.InvalidNonce):
        stale.fetch_balance()


@pytest.mark.timeout(60)
def test_a_market_sell_by_cost_through_ccxt(exchange: Exchange) -> None:
    bidder, seller = client(exchange, 3), client(exchange, 2)
    bidder.load_markets()
    seller.load_markets()
    bid = bidder.create_order(SYM, "limit", "buy", 0.05, 800)
    by_cost = seller.create_market_sell_order_with_cost(SYM, 12.0)  # quoteOrderQty on a SELL
    assert (by_cost["status"], by_cost["filled"], by_cost["cost"]) == ("closed", 0.015, 12.0)
    assert by_cost["info"]["origQuoteOrderQty"] == "12.00000000"
    same = seller.create_order(SYM, "market", "sell", None, params={"quoteOrderQty": 6.0})
    assert (same["filled"], same["cost"]) == (0.0075, 6.0)
    assert bidder.fetch_order(bid["id"], SYM)["filled"] == 0.0225
    bidder.cancel_order(bid["id"], SYM)


@pytest.mark.timeout(60)
def test_trading_fees_are_the_rates_the_engine_charges(exchange: Exchange) -> None:
    """fetch_trading_fee(s) (GET /sapi/v1/asset/tradeFee): the symbol's rates, and an account's own rates once it
    has them, which the fills then show too. Last in this module: it changes account 1's rates, then restores them."""
    maker, taker = client(exchange, 1), client(exchange, 2)
    maker.load_markets()
    taker.load_markets()
    fee = maker.fetch_trading_fee(SYM)
    assert (fee["symbol"], fee["maker"], fee["taker"]) == (SYM, 0.001, 0.001)
    assert sorted(maker.fetch_trading_fees()) == sorted(maker.symbols)

    seq = exchange.venue.client("fees")
    try:
        exchange.venue.wait_engine(seq.submit(seq.set_fee_rates(1, 2, 7)).in_seq)
        wait_for(lambda: maker.fetch_trading_fee(SYM)["maker"] == 0.0002, 5, "the gateway to see the new rates")
        assert maker.fetch_trading_fee(SYM)["taker"] == 0.0007
        assert taker.fetch_trading_fee(SYM)["maker"] == 0.001  # another account keeps the symbol's
        sell = maker.create_order(SYM, "limit", "sell", 0.01, 800)  # at the last price (the price band)
        taker.create_order(SYM, "market", "buy", 0.01)
        (fill,) = maker.fetch_my_trades(SYM, params={"orderId": sell["id"]})
        assert fill["fee"] == {"cost": 0.0016, "currency": "USDT"}  # 2 bps of the 8 USDT received
    finally:
        exchange.venue.wait_engine(seq.submit(seq.set_fee_rates(1, -1, -1)).in_seq)
    wait_for(lambda: maker.fetch_trading_fee(SYM)["maker"] == 0.001, 5, "the symbol's rates back")
