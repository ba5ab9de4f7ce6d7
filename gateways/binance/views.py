"""Mercury's rows and events as Binance's JSON: decimal strings from ticks, lots and asset units, times in ms."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.accounts import FEE_ACCOUNT
from gateways.binance import errors
from gateways.binance.limits import Limits
from persistence.history import Fill, PreventedMatch
from persistence.pg_model import OrderRow
from wire.enums import SelfTradeMode, Side
from wire.events import TradeExecuted
from wire.venue import SymbolSpec, Venue

NS_PER_MS = 1_000_000


class Formats:
    """Decimal strings for one venue, padded as Binance pads them: prices to the quote asset's decimals,
    quantities to the base asset's (``SymbolSpec.price_text``), money to its asset's."""

    def __init__(self, venue: Venue, limits: Limits | None = None) -> None:
        self.specs = {s.symbol: s for s in venue.symbols}
        self.decimals = {a.name: a.decimals for a in venue.assets}
        self.rate_limits = limits.advertised() if limits is not None else []

    def price(self, spec: SymbolSpec, ticks: int) -> str:
        return spec.price_text(ticks)

    def qty(self, spec: SymbolSpec, lots: int) -> str:
        return spec.qty_text(lots)

    def money(self, asset: str, units: int) -> str:
        # format "f": str() of a zero at this exponent is "0E-8", which Binance never sends
        return format(Decimal(units).scaleb(-self.decimals[asset]), "f")

    def order(self, row: OrderRow, full: bool = True) -> dict[str, Any]:
        """The order object of GET /api/v3/order (and of order responses, with ``transactTime``)."""
        spec = self.specs[row.symbol]
        out: dict[str, Any] = {
            "symbol": row.symbol,
            "orderId": row.order_id,
            "orderListId": -1,
            "clientOrderId": row.client_oid,
            "price": self.price(spec, row.price),
            "origQty": self.qty(spec, row.orig_qty),
            "executedQty": self.qty(spec, row.executed_qty),
            "cummulativeQuoteQty": self.money(spec.quote, row.cum_quote),
            "status": row.status,
            "timeInForce": row.tif,
            "type": row.type,
            "side": row.side,
        }
        if full:
            out.update(
                stopPrice=self.price(spec, 0),
                icebergQty=self.qty(spec, 0),
                time=row.created_ts // NS_PER_MS,
                updateTime=row.updated_ts // NS_PER_MS,
                isWorking=row.status in ("NEW", "PARTIALLY_FILLED"),
                workingTime=row.created_ts // NS_PER_MS,
                origQuoteOrderQty=self.money(spec.quote, row.quote_qty),
                selfTradePreventionMode=row.stp,
            )
            if row.prevented_match_id is not None:  # self-trade prevention expired (some of) it
                out.update(preventedMatchId=row.prevented_match_id, preventedQuantity=self.qty(spec, row.prevented_qty))
        return out

    def prevented(self, spec: SymbolSpec, match_id: int, maker_order_id: int, price: int, taker_qty: int,
                  maker_qty: int) -> dict[str, Any]:  # fmt: skip
        """One entry of an order response's ``preventedMatches``: each quantity only when the stop expired it."""
        out: dict[str, Any] = {"preventedMatchId": match_id, "makerSymbol": spec.symbol, "makerOrderId": maker_order_id,
                               "price": self.price(spec, price)}  # fmt: skip
        if taker_qty:
            out["takerPreventedQuantity"] = self.qty(spec, taker_qty)
        if maker_qty:
            out["makerPreventedQuantity"] = self.qty(spec, maker_qty)
        return out

    def prevented_match(self, m: PreventedMatch) -> dict[str, Any]:
        """GET /api/v3/myPreventedMatches' entry (Mercury has no trade groups: tradeGroupId is -1)."""
        spec = self.specs[m.symbol]
        out = {"symbol": m.symbol, "takerOrderId": m.taker_order_id, "tradeGroupId": -1,
               "selfTradePreventionMode": m.mode}  # fmt: skip
        out.update(self.prevented(spec, m.match_id, m.maker_order_id, m.price, m.taker_qty, m.maker_qty))
        out["transactTime"] = m.ts // NS_PER_MS
        return out

    def fills(self, spec: SymbolSpec, order_id: int, trades: list[TradeExecuted]) -> list[dict[str, Any]]:
        """The FULL response's fills of ``order_id`` (the taker), with what it paid in fees."""
        out = []
        for t in trades:
            mine_is_taker = t.taker_order_id == order_id
            buyer = (t.taker_side is Side.BUY) == mine_is_taker
            out.append(
                {
                    "price": self.price(spec, t.price),
                    "qty": self.qty(spec, t.qty),
                    "commission": self.money(spec.base if buyer else spec.quote,
                                             t.taker_fee if mine_is_taker else t.maker_fee),
                    "commissionAsset": spec.base if buyer else spec.quote,
                    "tradeId": t.trade_id,
                }
            )  # fmt: skip
        return out

    def my_trade(self, fill: Fill) -> dict[str, Any]:
        spec = self.specs[fill.symbol]
        return {
            "symbol": fill.symbol,
            "id": fill.trade_id,
            "orderId": fill.order_id,
            "orderListId": -1,
            "price": self.price(spec, fill.price),
            "qty": self.qty(spec, fill.qty),
            "quoteQty": self.money(spec.quote, fill.quote_qty),
            "commission": self.money(fill.commission_asset, fill.commission),
            "commissionAsset": fill.commission_asset,
            "time": fill.ts // NS_PER_MS,
            "isBuyer": fill.is_buyer,
            "isMaker": fill.is_maker,
            "isBestMatch": True,
        }

    def exchange_info(self, server_ms: int, only: list[str] | None = None) -> dict[str, Any]:
        """GET /api/v3/exchangeInfo, of every symbol or of those ``only`` names (an unknown one: -1121)."""
        if only is not None and any(name not in self.specs for name in only):
            raise errors.INVALID_SYMBOL
        symbols = []
        for spec in self.specs.values() if only is None else [self.specs[name] for name in only]:
            symbols.append(
                {
                    "symbol": spec.symbol,
                    "status": "TRADING",
                    "baseAsset": spec.base,
                    "baseAssetPrecision": self.decimals[spec.base],
                    "quoteAsset": spec.quote,
                    "quotePrecision": self.decimals[spec.quote],
                    "quoteAssetPrecision": self.decimals[spec.quote],
                    "baseCommissionPrecision": self.decimals[spec.base],
                    "quoteCommissionPrecision": self.decimals[spec.quote],
                    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
                    "icebergAllowed": False,
                    "ocoAllowed": False,
                    "otoAllowed": False,
                    "quoteOrderQtyMarketAllowed": True,
                    "allowTrailingStop": False,
                    "cancelReplaceAllowed": True,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "filters": self._filters(spec),
                    "permissions": [],
                    "permissionSets": [["SPOT"]],
                    "defaultSelfTradePreventionMode": SelfTradeMode.EXPIRE_TAKER.name,
                    "allowedSelfTradePreventionModes": [m.name for m in SelfTradeMode],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": server_ms,
            "rateLimits": self.rate_limits,
            "exchangeFilters": [],
            "symbols": symbols,
        }

    def _filters(self, spec: SymbolSpec) -> list[dict[str, Any]]:
        lots = {
            "minQty": self.qty(spec, spec.min_qty),
            "maxQty": self.qty(spec, spec.max_qty),
            "stepSize": self.qty(spec, 1),
        }
        filters: list[dict[str, Any]] = [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": self.price(spec, 1),
                "maxPrice": self.price(spec, spec.max_price),
                "tickSize": self.price(spec, 1),
            },
            {"filterType": "LOT_SIZE", **lots},
            {"filterType": "MARKET_LOT_SIZE", **lots},
            {
                "filterType": "NOTIONAL",
                "minNotional": self.money(spec.quote, spec.min_notional * spec.quote_per_tick_lot),
                "applyMinToMarket": True,
                "maxNotional": self.money(spec.quote, spec.max_price * spec.max_qty * spec.quote_per_tick_lot),
                "applyMaxToMarket": False,
                "avgPriceMins": 0,
            },
        ]
        if spec.band_bps:
            band = Decimal(spec.band_bps) / 10_000
            filters.append(
                {
                    "filterType": "PERCENT_PRICE_BY_SIDE",
                    "bidMultiplierUp": str(1 + band),
                    "bidMultiplierDown": str(1 - band),
                    "askMultiplierUp": str(1 + band),
                    "askMultiplierDown": str(1 - band),
                    "avgPriceMins": 0,
                }
            )
        return filters

    def account(self, account: int, balances: dict[str, tuple[int, int]], rates: tuple[int, int] | None,
                server_ms: int, omit_zero: bool = False) -> dict[str, Any]:  # fmt: skip
        """GET /api/v3/account: every asset of the venue, or (Binance's ``omitZeroBalances``) only those with
        something free or locked."""
        maker, taker = rates if rates is not None else (self._symbol_rates())
        amounts = {asset: balances.get(asset, (0, 0)) for asset in self.decimals}
        held = [
            {"asset": asset, "free": self.money(asset, free), "locked": self.money(asset, locked)}
            for asset, (free, locked) in amounts.items() if free or locked or not omit_zero
        ]  # fmt: skip

        return {
            "makerCommission": maker,
            "takerCommission": taker,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": _rates(maker, taker),
            "canTrade": account != FEE_ACCOUNT,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": server_ms,
            "accountType": "SPOT",
            "balances": held,
            "permissions": ["SPOT"],
            "uid": account,
        }

    def trade_fees(self, specs: list[SymbolSpec], override: tuple[int, int] | None) -> list[dict[str, str]]:
        """GET /sapi/v1/asset/tradeFee: each symbol's maker and taker rates for this account."""
        out = []
        for spec in specs:
            maker, taker = override if override is not None else (spec.maker_fee_bps, spec.taker_fee_bps)
            out.append({"symbol": spec.symbol, "makerCommission": _rate(maker), "takerCommission": _rate(taker)})
        return out

    def commission(self, spec: SymbolSpec, override: tuple[int, int] | None) -> dict[str, Any]:
        """GET /api/v3/account/commission: the rates the engine charges this account on ``spec`` (an account's own
        rates replace the symbol's); Mercury has no special or tax commission and no fee-asset discount."""
        maker, taker = override if override is not None else (spec.maker_fee_bps, spec.taker_fee_bps)
        none = _rates(0, 0)
        return {"symbol": spec.symbol, "standardCommission": _rates(maker, taker), "specialCommission": none,
                "taxCommission": none,
                "discount": {"enabledForAccount": False, "enabledForSymbol": False, "discountAsset": "",
                             "discount": _rate(0)}}  # fmt: skip

    def _symbol_rates(self) -> tuple[int, int]:
        first = next(iter(self.specs.values()))
        return first.maker_fee_bps, first.taker_fee_bps


def _rate(bps: int) -> str:
    """A fee rate as Binance writes it: a fraction with 8 decimals (10 bps: "0.00100000")."""
    return f"{Decimal(bps) / 10_000:.8f}"


def _rates(maker: int, taker: int) -> dict[str, str]:
    return {"maker": _rate(maker), "taker": _rate(taker), "buyer": _rate(0), "seller": _rate(0)}
