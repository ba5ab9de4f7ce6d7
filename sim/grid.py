"""A symbol's trading rules as ``/api/v3/exchangeInfo`` states them, and the exact grid arithmetic orders need.

Everything the simulator sends is a ``Decimal`` put on the symbol's grid here and written out with ``str`` of a
quantized value: the venue refuses a price off its tick or a quantity off its step (it never rounds), and a float
would put ``0.1 + 0.2`` on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any


def on_grid(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    """``value`` rounded to a whole multiple of ``step`` (``rounding`` is a ``decimal`` mode), carrying exactly the
    step's decimals so that ``str`` of it is the text the venue expects ("60000.10", not "6.00001E+4")."""
    multiple = (value / step).to_integral_value(rounding=rounding)
    return (multiple * step).quantize(Decimal(1).scaleb(-decimals(step)))


def decimals(step: Decimal) -> int:
    """How many decimals a value on this grid is written with (0 for a whole step such as 25)."""
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int), f"not a finite step: {step}"
    return max(0, -exponent)


def text(value: Decimal) -> str:
    """A grid value as the decimal string sent on the wire: fixed point, never an exponent."""
    return format(value, "f")


def _dec(value: Any) -> Decimal:
    """An exchangeInfo number (a string such as "0.01000000") with its trailing zeros dropped: the grid's step."""
    d = Decimal(str(value))
    return d.normalize() if d else d


@dataclass(frozen=True, slots=True)
class SymbolRules:
    symbol: str
    base: str
    quote: str
    tick: Decimal  # PRICE_FILTER tickSize
    min_price: Decimal
    max_price: Decimal
    step: Decimal  # LOT_SIZE stepSize
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal  # NOTIONAL minNotional (0 when the symbol has none)
    quote_precision: int  # decimals a quoteOrderQty may have

    @classmethod
    def from_exchange_info(cls, entry: dict[str, Any]) -> SymbolRules:
        filters = {f["filterType"]: f for f in entry.get("filters", [])}
        price, lot = filters["PRICE_FILTER"], filters["LOT_SIZE"]
        notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
        return cls(
            symbol=entry["symbol"],
            base=entry["baseAsset"],
            quote=entry["quoteAsset"],
            tick=_dec(price["tickSize"]),
            min_price=_dec(price["minPrice"]),
            max_price=_dec(price["maxPrice"]),
            step=_dec(lot["stepSize"]),
            min_qty=_dec(lot["minQty"]),
            max_qty=_dec(lot["maxQty"]),
            min_notional=_dec(notional.get("minNotional", "0")),
            quote_precision=int(entry.get("quoteAssetPrecision", entry.get("quotePrecision", 8))),
        )

    # prices ---------------------------------------------------------------------------------------------------------

    def _clamp_price(self, price: Decimal) -> Decimal:
        low = self.min_price if self.min_price > 0 else self.tick
        return min(max(price, on_grid(low, self.tick, ROUND_CEILING)), on_grid(self.max_price, self.tick, ROUND_FLOOR))

    def bid_price(self, value: Decimal) -> Decimal:
        """The highest price on the tick at or below ``value`` (a buyer never pays more than it meant to)."""
        return self._clamp_price(on_grid(value, self.tick, ROUND_FLOOR))

    def ask_price(self, value: Decimal) -> Decimal:
        """The lowest price on the tick at or above ``value``."""
        return self._clamp_price(on_grid(value, self.tick, ROUND_CEILING))

    def nearest_price(self, value: Decimal) -> Decimal:
        return self._clamp_price(on_grid(value, self.tick, ROUND_HALF_EVEN))

    # quantities -----------------------------------------------------------------------------------------------------

    def qty_for(self, notional: Decimal, price: Decimal) -> Decimal:
        """The quantity on the step worth about ``notional`` at ``price``, raised as needed to pass LOT_SIZE's
        minimum and the NOTIONAL filter (with a tick of room for a price that moves down a little)."""
        wanted = max(notional, self.min_notional * Decimal("1.01"))
        qty = on_grid(wanted / price, self.step, ROUND_CEILING)
        qty = max(qty, on_grid(self.min_qty, self.step, ROUND_CEILING))
        return min(qty, on_grid(self.max_qty, self.step, ROUND_FLOOR))

    def quote_amount(self, notional: Decimal) -> Decimal:
        """A quoteOrderQty: at most the quote asset's decimals (finer is refused -1111), and at least the minimum."""
        grain = Decimal(1).scaleb(-min(self.quote_precision, decimals(self.tick)))
        return on_grid(max(notional, self.min_notional * 2), grain, ROUND_CEILING)


def rules_by_symbol(exchange_info: dict[str, Any]) -> dict[str, SymbolRules]:
    """The trading symbols of an exchangeInfo answer, in its order."""
    return {
        s["symbol"]: SymbolRules.from_exchange_info(s)
        for s in exchange_info.get("symbols", [])
        if s.get("status", "TRADING") == "TRADING"
    }
