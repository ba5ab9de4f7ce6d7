"""The symbols of config/venue.toml as exchangeInfo states them (Binance's shapes), for the simulator's unit tests."""

from __future__ import annotations

from typing import Any

from sim.grid import SymbolRules, rules_by_symbol


def entry(symbol: str, base: str, quote: str, tick: str, step: str, min_notional: str, max_price: str,
          max_qty: str = "9000") -> dict[str, Any]:  # fmt: skip
    return {
        "symbol": symbol, "status": "TRADING", "baseAsset": base, "quoteAsset": quote, "baseAssetPrecision": 8,
        "quotePrecision": 8, "quoteAssetPrecision": 8,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": max_price, "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": max_qty, "stepSize": step},
            {"filterType": "MARKET_LOT_SIZE", "minQty": step, "maxQty": max_qty, "stepSize": step},
            {"filterType": "NOTIONAL", "minNotional": min_notional, "applyMinToMarket": True},
        ],
    }  # fmt: skip


EXCHANGE_INFO = {"symbols": [
    entry("BTCUSDT", "BTC", "USDT", "0.01000000", "0.00001000", "5.00000000", "10000000.00000000"),
    entry("ETHUSDT", "ETH", "USDT", "0.01", "0.0001", "5", "1000000", "90000"),
    entry("ETHBTC", "ETH", "BTC", "0.00001", "0.001", "0.0001", "100", "100000"),
]}  # fmt: skip
RULES: dict[str, SymbolRules] = rules_by_symbol(EXCHANGE_INFO)
