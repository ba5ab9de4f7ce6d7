"""Grid rounding: every price the simulator sends is on its symbol's tick, every quantity on its step, written as
the exact decimal text the venue takes, and sized to pass the NOTIONAL filter."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from hypothesis import given
from hypothesis import strategies as st

from sim.grid import decimals, on_grid, text
from tests.sim.rules import RULES

STEPS = st.sampled_from([Decimal(s) for s in ("0.01", "0.00001", "0.001", "0.5", "1", "25", "0.00000001")])
VALUES = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(10**7), places=9)
MODES = st.sampled_from([ROUND_FLOOR, ROUND_CEILING, ROUND_HALF_EVEN])


@given(VALUES, STEPS, MODES)
def test_a_value_on_the_grid_is_a_whole_multiple_of_the_step_within_one_step(
    value: Decimal, step: Decimal, mode: str
) -> None:
    got = on_grid(value, step, mode)
    assert got % step == 0
    assert abs(got - value) < step
    if mode == ROUND_FLOOR:
        assert got <= value
    if mode == ROUND_CEILING:
        assert got >= value
    written = text(got)
    assert "E" not in written and Decimal(written) == got
    assert len(written.partition(".")[2]) == decimals(step), "written with exactly the step's decimals"


def test_the_text_is_what_the_venue_expects() -> None:
    assert text(on_grid(Decimal("60000.126"), Decimal("0.01"), ROUND_FLOOR)) == "60000.12"
    assert text(on_grid(Decimal("60000"), Decimal("0.01"), ROUND_FLOOR)) == "60000.00"
    assert text(on_grid(Decimal("0.0012345"), Decimal("0.00001"), ROUND_CEILING)) == "0.00124"
    assert text(on_grid(Decimal("60013"), Decimal("25"), ROUND_HALF_EVEN)) == "60025"
    assert RULES["BTCUSDT"].tick == Decimal("0.01") and RULES["ETHBTC"].step == Decimal("0.001")


@given(st.sampled_from(sorted(RULES)), st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**8), places=6))
def test_prices_are_on_the_tick_and_inside_the_price_filter(symbol: str, value: Decimal) -> None:
    rules = RULES[symbol]
    for price in (rules.bid_price(value), rules.ask_price(value), rules.nearest_price(value)):
        assert price % rules.tick == 0
        assert rules.min_price <= price <= rules.max_price
        assert Decimal(text(price)) == price
    if rules.min_price <= value <= rules.max_price:
        assert rules.bid_price(value) <= value <= rules.ask_price(value)


@given(st.sampled_from(sorted(RULES)), st.decimals(min_value=Decimal("0.001"), max_value=Decimal(5000), places=3),
       st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(100_000), places=4))  # fmt: skip
def test_quantities_are_on_the_step_and_pass_lot_size_and_notional(symbol: str, notional: Decimal,
                                                                    price: Decimal) -> None:  # fmt: skip
    rules = RULES[symbol]
    price = rules.nearest_price(price)
    qty = rules.qty_for(notional, price)
    assert qty % rules.step == 0
    assert rules.min_qty <= qty <= rules.max_qty
    if qty < rules.max_qty:
        assert qty * price >= rules.min_notional
        assert qty * price >= notional
    amount = rules.quote_amount(notional)
    assert len(text(amount).partition(".")[2]) <= rules.quote_precision
    assert amount >= notional and amount >= rules.min_notional
