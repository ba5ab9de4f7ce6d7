"""Symbol and venue configuration: decimal specs from a TOML file turned into the engine's integer units.

Inside the engine a price is an integer number of ticks and a quantity an integer number of lots. Notional
(price x quantity) is therefore counted in units of ``tick_size * lot_size`` quote; the minimum notional is
converted once, rounded up, so that an order is refused exactly when its decimal notional is below the minimum.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

from wire.errors import ConfigError

DEFAULT_VENUE = Path(__file__).resolve().parent.parent / "config" / "venue.toml"


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: int  # lots
    max_qty: int  # lots
    min_notional: int  # units of tick_size * lot_size quote, rounded up
    max_price: int  # ticks: the highest price the venue accepts at all
    band_bps: int  # orders must be within this many basis points of the last trade price (0: no band)
    # money in asset units (wire.venue.AssetSpec): a lot is base_per_lot base units, and a price x quantity of
    # one tick x one lot is quote_per_tick_lot quote units. load_venue checks both are whole numbers, so that
    # every balance movement is exact.
    base_per_lot: int = 1
    quote_per_tick_lot: int = 1
    # fees in basis points of what each side receives (an account may have its own rates: SetFeeRates)
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0
    # decimal places of prices and quantities as text: the quote's and the base's decimals, or the tick's and the
    # lot's if those are finer. Binance pads every price and quantity so ("0.01000000", not "0.01"), and clients
    # compare the strings: python-binance's depth cache drops a level only when its size is "0.00000000".
    price_places: int = 0
    qty_places: int = 0

    def price_to_ticks(self, text: str) -> int:
        """Exact conversion of a decimal string; raises ValueError if it is not on the tick grid."""
        return _to_units(text, self.tick_size, "price", "tick size")

    def qty_to_lots(self, text: str) -> int:
        return _to_units(text, self.lot_size, "quantity", "lot size")

    def ticks_to_price(self, ticks: int) -> Decimal:
        """Exact, with the tick size's decimal places (never an exponent form such as 1E+2)."""
        return self.tick_size * ticks

    def lots_to_qty(self, lots: int) -> Decimal:
        return self.lot_size * lots

    def price_text(self, ticks: int) -> str:
        """A price as Binance writes it: ``price_places`` decimals, never an exponent form."""
        return format(self.tick_size * ticks, f".{self.price_places}f")

    def qty_text(self, lots: int) -> str:
        return format(self.lot_size * lots, f".{self.qty_places}f")


def _to_units(text: str, step: Decimal, what: str, step_name: str) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what} {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise ValueError(f"{what} {text!r} is not a finite number")
    try:
        units, rest = divmod(value, step)
    except InvalidOperation:  # more units than the decimal context's precision holds
        raise ValueError(f"{what} {text} is too large") from None
    if rest != 0:
        raise ValueError(f"{what} {text} is not a multiple of the {step_name} {step}")
    return int(units)


@dataclass(frozen=True, slots=True)
class AssetSpec:
    """An asset's integer unit is 10**-decimals of it: balances, deposits and withdrawals count those units."""

    name: str
    decimals: int

    def to_units(self, text: str) -> int:
        """Exact conversion of a decimal amount; raises ValueError if it has more places than the asset."""
        return _to_units(text, Decimal(1).scaleb(-self.decimals), "amount", f"{self.name} unit")

    def from_units(self, units: int) -> Decimal:
        return Decimal(units).scaleb(-self.decimals)


DEFAULT_DECIMALS = 8  # for an asset a venue file names in a symbol but does not list under [[assets]]


@dataclass(frozen=True, slots=True)
class Venue:
    shard: str
    symbols: tuple[SymbolSpec, ...]
    assets: tuple[AssetSpec, ...] = ()

    def spec(self, symbol: str) -> SymbolSpec:
        for s in self.symbols:
            if s.symbol == symbol:
                return s
        raise KeyError(symbol)


def _decimal(table: dict[str, object], key: str, where: str) -> Decimal:
    raw = table.get(key)
    if not isinstance(raw, str | int):
        raise ConfigError(f"{where}: {key} must be a decimal string")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise ConfigError(f"{where}: {key}={raw!r} is not a decimal") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{where}: {key}={raw!r} must be a finite number >= 0")
    return value


def symbol_from_table(t: dict[str, object]) -> SymbolSpec:
    name = t.get("symbol")
    if not isinstance(name, str) or not name.isalnum() or not name.isupper():
        raise ConfigError(f"symbol name {name!r} must be upper-case letters and digits")
    where = f"symbol {name}"
    tick, lot = _decimal(t, "tick_size", where), _decimal(t, "lot_size", where)
    if tick <= 0 or lot <= 0:
        raise ConfigError(f"{where}: tick_size and lot_size must be > 0")

    def in_units(key: str, step: Decimal) -> int:
        value = _decimal(t, key, where)
        try:
            units, rest = divmod(value, step)
        except InvalidOperation:
            raise ConfigError(f"{where}: {key} {value} is too large") from None
        if rest:
            raise ConfigError(f"{where}: {key} {value} is not a multiple of {step}")
        return int(units)

    min_notional = _decimal(t, "min_notional", where)
    try:
        whole, rest = divmod(min_notional, tick * lot)  # Decimal // truncates: -(-a // b) is no ceiling
    except InvalidOperation:
        raise ConfigError(f"{where}: min_notional {min_notional} is too large") from None
    notional_units = whole + 1 if rest else whole  # ceil: the venue never lets a smaller order through
    band = t.get("price_band_bps", 0)
    fees: dict[str, int] = {}
    for key in ("maker_fee_bps", "taker_fee_bps"):
        bps = t.get(key, 0)
        if not isinstance(bps, int) or isinstance(bps, bool) or not 0 <= bps < 10_000:
            raise ConfigError(f"{where}: {key} must be an integer in [0, 10000)")
        fees[key] = bps
    base, quote = t.get("base"), t.get("quote")
    if not isinstance(band, int) or isinstance(band, bool) or band < 0 or band >= 10_000:
        raise ConfigError(f"{where}: price_band_bps must be an integer in [0, 10000)")
    if not isinstance(base, str) or not isinstance(quote, str) or not base or not quote:
        raise ConfigError(f"{where}: base and quote assets must be named")
    spec = SymbolSpec(
        symbol=name,
        base=base,
        quote=quote,
        tick_size=tick,
        lot_size=lot,
        min_qty=in_units("min_qty", lot),
        max_qty=in_units("max_qty", lot),
        min_notional=int(notional_units),
        max_price=in_units("max_price", tick),
        band_bps=band,
        maker_fee_bps=fees["maker_fee_bps"],
        taker_fee_bps=fees["taker_fee_bps"],
    )
    if not 0 < spec.min_qty <= spec.max_qty:
        raise ConfigError(f"{where}: need 0 < min_qty <= max_qty")
    if spec.max_price <= 0:
        raise ConfigError(f"{where}: max_price must be > 0")
    return spec


def load_venue(path: Path | str = DEFAULT_VENUE) -> Venue:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read venue file {path}: {exc}") from None
    venue = data.get("venue", {})
    tables = data.get("symbols", [])
    if not isinstance(venue, dict):
        raise ConfigError(f"{path}: [venue] must be a table")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: symbols must be an array of tables ([[symbols]])")
    shard = venue.get("shard", "e0")
    if not isinstance(shard, str) or not shard.isidentifier():
        raise ConfigError("venue.shard must be a short identifier")
    if not tables:
        raise ConfigError(f"{path}: no [[symbols]]")
    symbols = tuple(symbol_from_table(t) for t in tables)
    if len({s.symbol for s in symbols}) != len(symbols):
        raise ConfigError(f"{path}: a symbol is listed twice")
    assets = _assets(data.get("assets", []), symbols, path)
    return Venue(shard=shard, symbols=tuple(_with_units(s, assets, path) for s in symbols), assets=assets)


def _with_units(spec: SymbolSpec, assets: tuple[AssetSpec, ...], path: Path | str) -> SymbolSpec:
    by_name = {a.name: a for a in assets}
    base_unit = Decimal(1).scaleb(-by_name[spec.base].decimals)
    quote_unit = Decimal(1).scaleb(-by_name[spec.quote].decimals)
    per_lot, rest = divmod(spec.lot_size, base_unit)
    if rest:
        raise ConfigError(f"{path}: {spec.symbol}: lot_size {spec.lot_size} is finer than a {spec.base} unit")
    per_tick_lot, rest = divmod(spec.tick_size * spec.lot_size, quote_unit)
    if rest:
        raise ConfigError(
            f"{path}: {spec.symbol}: tick_size x lot_size = {spec.tick_size * spec.lot_size} is finer than a"
            f" {spec.quote} unit ({quote_unit}): amounts could not be settled exactly"
        )
    return replace(
        spec,
        base_per_lot=int(per_lot),
        quote_per_tick_lot=int(per_tick_lot),
        price_places=max(by_name[spec.quote].decimals, _places(spec.tick_size)),
        qty_places=max(by_name[spec.base].decimals, _places(spec.lot_size)),
    )


def _places(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _assets(tables: object, symbols: tuple[SymbolSpec, ...], path: Path | str) -> tuple[AssetSpec, ...]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: assets must be an array of tables ([[assets]])")
    listed: dict[str, AssetSpec] = {}
    for t in tables:
        name, decimals = t.get("name"), t.get("decimals")
        if not isinstance(name, str) or not name.isalnum() or not name.isupper():
            raise ConfigError(f"{path}: asset name {name!r} must be upper-case letters and digits")
        if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 18:
            raise ConfigError(f"{path}: asset {name}: decimals must be an integer in [0, 18]")
        if name in listed:
            raise ConfigError(f"{path}: asset {name} is listed twice")
        listed[name] = AssetSpec(name, decimals)
    for s in symbols:
        for name in (s.base, s.quote):
            if name not in listed:
                listed[name] = AssetSpec(name, DEFAULT_DECIMALS)
    return tuple(sorted(listed.values(), key=lambda a: a.name))
