"""wire.venue: exact decimal <-> ticks/lots conversion, and venue files refused with ConfigError."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from wire.errors import ConfigError
from wire.venue import DEFAULT_VENUE, SymbolSpec, load_venue

SPEC = SymbolSpec(
    symbol="BTCUSDT",
    base="BTC",
    quote="USDT",
    tick_size=Decimal("0.01"),
    lot_size=Decimal("0.00001"),
    min_qty=1,
    max_qty=900_000_000,
    min_notional=50_000_000,
    max_price=1_000_000_000,
    band_bps=2_000,
)


@pytest.mark.parametrize(
    ("text", "ticks"),
    [
        ("0.01", 1),
        ("123.45", 12_345),
        ("100", 10_000),
        ("100.000", 10_000),
        ("0.10", 10),
        ("1E+2", 10_000),
        ("0", 0),
        ("12345678901234567.89", 1_234_567_890_123_456_789),  # beyond a float's 53 bits: still exact
    ],
)
def test_price_to_ticks_is_exact_when_price_is_on_the_grid(text: str, ticks: int) -> None:
    assert SPEC.price_to_ticks(text) == ticks


@pytest.mark.parametrize(
    ("text", "lots"),
    [("0.00001", 1), ("1.5", 150_000), ("9000", 900_000_000), ("0.12345", 12_345), ("0.3", 30_000)],
)
def test_qty_to_lots_is_exact_when_quantity_is_on_the_grid(text: str, lots: int) -> None:
    assert SPEC.qty_to_lots(text) == lots


@pytest.mark.parametrize("text", ["0.001", "123.456", "0.015", "1e-3"])
def test_price_to_ticks_when_price_is_off_the_tick_grid_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape("not a multiple of the tick size 0.01")):
        SPEC.price_to_ticks(text)


@pytest.mark.parametrize("text", ["0.000001", "1.000005", "0.1234567"])
def test_qty_to_lots_when_quantity_is_off_the_lot_grid_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape("not a multiple of the lot size 0.00001")):
        SPEC.qty_to_lots(text)


@pytest.mark.parametrize("text", ["", "abc", "1,5", "0x10", "1..2"])
def test_price_to_ticks_when_text_is_not_a_number_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="is not a decimal number"):
        SPEC.price_to_ticks(text)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-inf", "sNaN"])
def test_qty_to_lots_when_text_is_not_finite_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="is not a finite number"):
        SPEC.qty_to_lots(text)


@pytest.mark.parametrize("text", ["1e40", "100000000000000000000000000"])
def test_price_to_ticks_when_price_has_more_units_than_decimal_precision_raises_value_error(text: str) -> None:
    # regression: this used to escape as decimal.InvalidOperation, which is not a ValueError
    with pytest.raises(ValueError, match="too large"):
        SPEC.price_to_ticks(text)


@pytest.mark.parametrize(("ticks", "price"), [(1, "0.01"), (12_345, "123.45"), (10_000, "100"), (10, "0.1")])
def test_ticks_to_price_is_the_exact_inverse_of_price_to_ticks(ticks: int, price: str) -> None:
    assert SPEC.ticks_to_price(ticks) == Decimal(price)
    assert SPEC.price_to_ticks(str(SPEC.ticks_to_price(ticks))) == ticks


@pytest.mark.parametrize(("lots", "qty"), [(1, "0.00001"), (150_000, "1.5"), (900_000_000, "9000")])
def test_lots_to_qty_is_the_exact_inverse_of_qty_to_lots(lots: int, qty: str) -> None:
    assert SPEC.lots_to_qty(lots) == Decimal(qty)
    assert SPEC.qty_to_lots(str(SPEC.lots_to_qty(lots))) == lots


# ---- venue files --------------------------------------------------------------------------------------------------


def test_load_venue_reads_the_repository_venue_in_integer_units() -> None:
    venue = load_venue(DEFAULT_VENUE)

    assert venue.shard == "e0"
    assert [s.symbol for s in venue.symbols] == ["BTCUSDT", "ETHUSDT", "ETHBTC"]
    assert venue.spec("BTCUSDT") == replace(
        SPEC,
        base_per_lot=1000,
        quote_per_tick_lot=10,
        maker_fee_bps=10,
        taker_fee_bps=10,
        price_places=8,
        qty_places=8,
    )
    ethbtc = venue.spec("ETHBTC")
    # min_notional 0.0001 BTC in units of 0.00001 * 0.001
    units = (ethbtc.min_qty, ethbtc.max_qty, ethbtc.min_notional, ethbtc.max_price)
    assert units == (1, 100_000_000, 10_000, 10_000_000)
    assert [(a.name, a.decimals) for a in venue.assets] == [("BTC", 8), ("ETH", 8), ("USDT", 8)]
    with pytest.raises(KeyError):
        venue.spec("DOGEUSDT")


SYMBOL = {
    "symbol": '"BTCUSDT"',
    "base": '"BTC"',
    "quote": '"USDT"',
    "tick_size": '"0.01"',
    "lot_size": '"0.001"',
    "min_qty": '"0.001"',
    "max_qty": '"100"',
    "min_notional": '"5"',
    "max_price": '"1000000"',
    "price_band_bps": "2000",
}


def symbol_table(**changes: str | None) -> str:
    """A [[symbols]] table; a change to None leaves the key out."""
    fields = {**SYMBOL, **changes}
    return "[[symbols]]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items() if v is not None)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "venue.toml"
    path.write_text(text)
    return path


def test_load_venue_reads_a_minimal_file_with_default_shard_and_band(tmp_path: Path) -> None:
    venue = load_venue(write(tmp_path, symbol_table(price_band_bps=None)))

    assert venue.shard == "e0"
    spec = venue.spec("BTCUSDT")
    assert (spec.tick_size, spec.lot_size) == (Decimal("0.01"), Decimal("0.001"))
    units = (spec.min_qty, spec.max_qty, spec.min_notional, spec.max_price, spec.band_bps)
    assert units == (1, 100_000, 500_000, 100_000_000, 0)
    assert (spec.maker_fee_bps, spec.taker_fee_bps) == (0, 0)  # no fees unless the file sets them


def test_load_venue_reads_fee_rates(tmp_path: Path) -> None:
    spec = load_venue(write(tmp_path, symbol_table(maker_fee_bps="2", taker_fee_bps="7"))).spec("BTCUSDT")
    assert (spec.maker_fee_bps, spec.taker_fee_bps) == (2, 7)


@pytest.mark.parametrize(("min_notional", "units"), [('"0.000015"', 2), ('"0.00001"', 1), ('"0"', 0), ("5", 500_000)])
def test_load_venue_rounds_the_minimum_notional_up_to_whole_units(
    tmp_path: Path, min_notional: str, units: int
) -> None:
    # units of tick 0.01 x lot 0.001 = 0.00001 quote; regression: 1.5 units used to round down to 1
    venue = load_venue(write(tmp_path, symbol_table(min_notional=min_notional)))

    assert venue.spec("BTCUSDT").min_notional == units


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[venue\n", "cannot read venue file"),
        ("", "no \\[\\[symbols\\]\\]"),
        ('[venue]\nshard = "e0"\n', "no \\[\\[symbols\\]\\]"),
        (symbol_table() + symbol_table(), "listed twice"),
        ('[venue]\nshard = "e-0"\n' + symbol_table(), "venue.shard"),
        ("[venue]\nshard = 1\n" + symbol_table(), "venue.shard"),
        ('venue = "e0"\n' + symbol_table(), "\\[venue\\] must be a table"),
        ("symbols = [1]\n", "array of tables"),
        ('symbols = "BTCUSDT"\n', "array of tables"),
        ('[symbols]\nsymbol = "BTCUSDT"\n', "array of tables"),
        (symbol_table(symbol='"btcusdt"'), "upper-case"),
        (symbol_table(symbol='"BTC-USDT"'), "upper-case"),
        (symbol_table(symbol=None), "upper-case"),
        (symbol_table(tick_size='"0"'), "must be > 0"),
        (symbol_table(lot_size='"-0.001"'), "must be a finite number >= 0"),
        (symbol_table(tick_size='"abc"'), "is not a decimal"),
        (symbol_table(tick_size="0.01"), "must be a decimal string"),  # a TOML float: inexact
        (symbol_table(tick_size='"inf"'), "finite"),
        (symbol_table(max_price=None), "max_price must be a decimal string"),
        (symbol_table(min_qty='"0.0015"'), "min_qty 0.0015 is not a multiple of 0.001"),
        (symbol_table(max_price='"0.005"'), "max_price 0.005 is not a multiple of 0.01"),
        (symbol_table(max_qty='"1e40"'), "max_qty 1E\\+40 is too large"),
        (symbol_table(min_notional='"1e40"'), "min_notional 1E\\+40 is too large"),
        (symbol_table(min_qty='"0"'), "need 0 < min_qty <= max_qty"),
        (symbol_table(min_qty='"200"'), "need 0 < min_qty <= max_qty"),
        (symbol_table(max_price='"0"'), "max_price must be > 0"),
        (symbol_table(price_band_bps="10000"), "price_band_bps"),
        (symbol_table(price_band_bps="-1"), "price_band_bps"),
        (symbol_table(price_band_bps='"2000"'), "price_band_bps"),
        (symbol_table(price_band_bps="true"), "price_band_bps"),
        (symbol_table(maker_fee_bps="10000"), "maker_fee_bps must be an integer in"),
        (symbol_table(taker_fee_bps="-1"), "taker_fee_bps must be an integer in"),
        (symbol_table(taker_fee_bps='"10"'), "taker_fee_bps must be an integer in"),
        (symbol_table(base=None), "base and quote"),
        (symbol_table(quote='""'), "base and quote"),
    ],
    ids=[
        "invalid-toml",
        "empty",
        "no-symbols",
        "duplicate-symbol",
        "shard-not-identifier",
        "shard-not-string",
        "venue-not-a-table",
        "symbols-not-tables",
        "symbols-a-string",
        "symbols-a-single-table",
        "symbol-lower-case",
        "symbol-punctuation",
        "symbol-missing",
        "tick-zero",
        "lot-negative",
        "tick-not-decimal",
        "tick-toml-float",
        "tick-infinite",
        "max-price-missing",
        "min-qty-off-lot",
        "max-price-off-tick",
        "max-qty-huge",
        "min-notional-huge",
        "min-qty-zero",
        "min-qty-above-max",
        "max-price-zero",
        "band-too-wide",
        "band-negative",
        "band-string",
        "band-bool",
        "maker-fee-too-high",
        "taker-fee-negative",
        "taker-fee-string",
        "base-missing",
        "quote-empty",
    ],
)
def test_load_venue_when_file_is_bad_raises_config_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_venue(write(tmp_path, text))


def test_load_venue_when_file_is_missing_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read venue file"):
        load_venue(tmp_path / "nowhere.toml")


def test_ticks_to_price_keeps_the_tick_size_places_never_an_exponent() -> None:
    assert str(SPEC.ticks_to_price(10_000)) == str(SPEC.tick_size * 10_000)
    assert "E" not in str(SPEC.ticks_to_price(10_000)) and "E" not in str(SPEC.lots_to_qty(10**6))


def _venue_file(tmp_path: Path, assets: str, symbol: str) -> Path:
    path = tmp_path / "venue.toml"
    path.write_text(assets + symbol)
    return path


UNIT_SYMBOL = """
[[symbols]]
symbol = "BTCUSDT"
base = "BTC"
quote = "USDT"
tick_size = "{tick}"
lot_size = "{lot}"
min_qty = "{lot}"
max_qty = "100"
min_notional = "1"
max_price = "1000000"
"""


def test_load_venue_computes_asset_units_per_lot_and_per_tick_lot(tmp_path: Path) -> None:
    assets = '[[assets]]\nname = "BTC"\ndecimals = 8\n[[assets]]\nname = "USDT"\ndecimals = 8\n'
    venue = load_venue(_venue_file(tmp_path, assets, UNIT_SYMBOL.format(tick="0.01", lot="0.00001")))
    (spec,) = venue.symbols
    assert (spec.base_per_lot, spec.quote_per_tick_lot) == (1000, 10)


@pytest.mark.parametrize(
    ("decimals", "tick", "lot", "message"),
    [
        (4, "0.01", "0.00001", "finer than a BTC unit"),  # a lot of 0.00001 BTC with BTC counted in 0.0001
        (8, "0.0001", "0.00001", "finer than a USDT unit"),  # 1e-9 USDT per tick x lot, USDT counted in 1e-8
    ],
)
def test_load_venue_when_units_cannot_settle_exactly_raises_config_error(
    tmp_path: Path, decimals: int, tick: str, lot: str, message: str
) -> None:
    assets = f'[[assets]]\nname = "BTC"\ndecimals = {decimals}\n[[assets]]\nname = "USDT"\ndecimals = 8\n'
    with pytest.raises(ConfigError, match=message):
        load_venue(_venue_file(tmp_path, assets, UNIT_SYMBOL.format(tick=tick, lot=lot)))


@pytest.mark.parametrize(
    ("base", "quote", "tick", "lot", "prices", "qtys"),
    [
        # Binance's padding: prices to the quote asset's decimals, quantities to the base asset's
        (8, 8, "0.01", "0.00001", {1: "0.01000000", 1234567: "12345.67000000", -5: "-0.05000000"},
         {1: "0.00001000", 300_000: "3.00000000", 0: "0.00000000"}),
        # a tick finer than the quote's decimals keeps its places (tick x lot is still whole quote units)
        (0, 2, "0.0001", "100", {1: "0.0001", 12345: "1.2345"}, {1: "100", 12345: "1234500"}),
        (2, 2, "1", "1", {1: "1.00", 12345: "12345.00"}, {10**15: "1000000000000000.00"}),
    ],
)  # fmt: skip
def test_price_and_qty_text_pad_to_the_asset_decimals_or_the_step_places(
    tmp_path: Path, base: int, quote: int, tick: str, lot: str, prices: dict[int, str], qtys: dict[int, str]
) -> None:
    assets = f'[[assets]]\nname = "BTC"\ndecimals = {base}\n[[assets]]\nname = "USDT"\ndecimals = {quote}\n'
    (spec,) = load_venue(_venue_file(tmp_path, assets, UNIT_SYMBOL.format(tick=tick, lot=lot))).symbols

    assert {ticks: spec.price_text(ticks) for ticks in prices} == prices
    assert {lots: spec.qty_text(lots) for lots in qtys} == qtys
