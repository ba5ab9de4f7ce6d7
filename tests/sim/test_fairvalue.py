"""The fair-value walk: the same seed gives the same path, every value is on the tick, jumps happen and stay far
inside the venue's price band, and a long run stays near where it started."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from sim.fairvalue import FairValue, WalkParams, path, seeded
from tests.sim.rules import RULES

STARTS = {"BTCUSDT": Decimal("60000"), "ETHUSDT": Decimal("3000"), "ETHBTC": Decimal("0.05")}


def test_the_same_seed_gives_the_same_path_and_another_seed_another() -> None:
    for symbol, start in STARTS.items():
        first = path(RULES[symbol], start, 42, 500)
        assert path(RULES[symbol], start, 42, 500) == first
        assert path(RULES[symbol], start, 43, 500) != first
    # each symbol has its own generator: the same seed does not move two symbols alike
    btc, eth = path(RULES["BTCUSDT"], Decimal(1000), 42, 50), path(RULES["ETHUSDT"], Decimal(1000), 42, 50)
    assert btc != eth


def test_a_walk_does_not_depend_on_when_it_is_stepped() -> None:
    rules = RULES["BTCUSDT"]
    one = FairValue(rules, STARTS["BTCUSDT"], seeded(9, "fair", "BTCUSDT"))
    steps = [one.step() for _ in range(100)]
    other = FairValue(rules, STARTS["BTCUSDT"], seeded(9, "fair", "BTCUSDT"))
    later = []
    for _ in range(100):
        other.rules.bid_price(Decimal(1))  # anything else happening between steps changes nothing
        later.append(other.step())
    assert later == steps


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=2**31), st.sampled_from(sorted(STARTS)))
def test_every_value_is_on_the_tick_and_moves_stay_inside_the_band(seed: int, symbol: str) -> None:
    rules = RULES[symbol]
    values = path(rules, STARTS[symbol], seed, 400)
    for value in values:
        assert value % rules.tick == 0 and rules.min_price <= value <= rules.max_price
    moves = [abs(b / a - 1) for a, b in zip([STARTS[symbol], *values], values, strict=False)]
    assert max(moves) < Decimal("0.03"), "a step (a jump included) moves less than 3%: the band is 20%"


def test_jumps_happen_and_a_long_walk_stays_near_its_start() -> None:
    rules, start = RULES["BTCUSDT"], STARTS["BTCUSDT"]
    values = path(rules, start, 5, 20_000)
    moves = [abs(b / a - 1) for a, b in itertools.pairwise(values)]
    assert sum(1 for m in moves if m > Decimal("0.003")) >= 20, "jumps: about one in 250 steps"
    assert all(start / 2 < v < start * 2 for v in values), "the weak pull keeps a long run near its start"
    calm = path(rules, start, 5, 2_000, WalkParams(jump_chance=0.0))
    calm_moves = [abs(b / a - 1) for a, b in itertools.pairwise(calm)]
    assert max(calm_moves) < Decimal("0.003")
