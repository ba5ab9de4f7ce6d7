"""The bots' decisions: the same seed and the same market give the same decisions; every order is valid for its
symbol's filters; quotes move with the fair value and never cross; positions stay within their limits. And the
plan: rates per account under the venue's limit, one bot on FIX, one on the WebSocket API."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from sim.bots import Bot, MarketMaker, Momentum, NoiseTaker, unit_notional
from sim.config import ACCOUNT_SHARE, Config, ConfigError, parse, plan
from sim.fairvalue import FairValue, seeded
from sim.marketdata import MarketView
from sim.orders import Action, Order, Outcome, Place, Replace, Report
from tests.sim.rules import RULES
from wire.config import Settings

STARTS = {"BTCUSDT": Decimal("60000"), "ETHUSDT": Decimal("3000"), "ETHBTC": Decimal("0.05")}


def market(seed: int, steps: int) -> list[MarketView]:
    """A market for the bots to look at: fair values from the walk, last trades a little off them."""
    walks = {s: FairValue(RULES[s], STARTS[s], seeded(seed, "fair", s)) for s in RULES}
    views = []
    for i in range(steps):
        fair = {s: w.step() for s, w in walks.items()}
        last = {s: RULES[s].nearest_price(p * (1 + Decimal((i % 7) - 3) / 10_000)) for s, p in fair.items()}
        bid = {s: RULES[s].bid_price(p * Decimal("0.9995")) for s, p in fair.items()}
        ask = {s: RULES[s].ask_price(p * Decimal("1.0005")) for s, p in fair.items()}
        views.append(MarketView(fair=fair, last=last, bid=bid, ask=ask))
    return views


def run(bot: Bot, views: list[MarketView]) -> list[Action]:
    """Decisions over ``views``, each answered as accepted and resting; every tenth order is filled."""
    actions = []
    for i, view in enumerate(views):
        action = bot.decide(view)
        if action is None:
            continue
        actions.append(action)
        bot.settle(action, Outcome(ok=True, status="NEW"))
        if i % 10 == 0 and isinstance(action, Place | Replace):
            o = action.order
            qty = o.qty or Decimal("0.001")
            bot.on_report(Report(o.symbol, o.client_id, o.side, qty, o.price or view.last[o.symbol], done=True),
                          action.slot)  # fmt: skip
    return actions


def valid(order: Order) -> None:
    rules = RULES[order.symbol]
    if order.qty is not None:
        assert order.qty % rules.step == 0 and rules.min_qty <= order.qty <= rules.max_qty, order
    if order.price is not None:
        assert order.price % rules.tick == 0, order
        assert order.qty is not None and order.qty * order.price >= rules.min_notional, order
    if order.quote_qty is not None:
        assert order.quote_qty >= rules.min_notional, order
    assert 1 <= len(order.client_id) <= 36 and order.client_id.replace("-", "").isalnum(), order


def makers(seed: int) -> MarketMaker:
    return MarketMaker("maker-1", seeded(seed, "bot", "maker-1"), RULES, 2, "sXm1-")


@pytest.mark.parametrize(
    "make",
    [
        makers,
        lambda seed: NoiseTaker("taker-1", seeded(seed, "bot", "taker-1"), RULES, 1, "sXt1-"),
        lambda seed: Momentum("momentum-1", seeded(seed, "bot", "momentum-1"), RULES, 1, "sXm1-"),
    ],
    ids=["maker", "taker", "momentum"],
)
def test_the_same_seed_and_market_give_the_same_valid_decisions(make: object) -> None:
    assert callable(make)
    views = market(11, 400)
    first = run(make(1), views)
    assert first, "the bot decided something"
    assert run(make(1), views) == first
    assert run(make(2), views) != first, "another seed, other decisions"
    for action in first:
        assert isinstance(action, Place | Replace)
        valid(action.order)


def test_a_maker_quotes_both_sides_around_the_fair_value_and_moves_its_quotes_with_it() -> None:
    bot = makers(1)
    views = market(3, 200)
    for view in views[:18]:  # 3 symbols x 3 levels x 2 sides: every quote placed once
        action = bot.decide(view)
        assert isinstance(action, Place)
        bot.settle(action, Outcome(ok=True, status="NEW"))
    assert len(bot.quotes) == 18
    moved = 0
    for view in views[18:]:
        for symbol in RULES:
            bids = [q.price for (s, side, _), q in bot.quotes.items() if s == symbol and side == "BUY"]
            asks = [q.price for (s, side, _), q in bot.quotes.items() if s == symbol and side == "SELL"]
            assert max(bids) < min(asks), "a maker's quotes never cross"
        action = bot.decide(view)
        if action is not None:
            assert isinstance(action, Replace), "a live quote is moved, not doubled"
            moved += 1
            fair = view.fair[action.order.symbol]
            if action.order.side == "BUY":
                assert action.order.price is not None and action.order.price < fair
            else:
                assert action.order.price is not None and action.order.price > fair
            bot.settle(action, Outcome(ok=True, status="NEW"))
    assert moved > 50, "the quotes follow the fair value"
    # a quote's order was filled: the maker places a new one rather than replacing it
    key, quote = next(iter(bot.quotes.items()))
    bot.on_report(Report(key[0], quote.client_id, key[1], Decimal("0.01"), quote.price, done=True))
    assert key not in bot.quotes


def test_a_maker_leans_against_its_position() -> None:
    flat, long = makers(1), makers(1)
    view = market(3, 1)[0]
    key_bid, key_ask = ("BTCUSDT", "BUY", 0), ("BTCUSDT", "SELL", 0)
    assert long.slot_of[key_bid] == long.slot_of[key_ask], "a level's bid and ask go through one account"
    for slot in range(long.slots):
        assert {side for (_, side, _), s in long.slot_of.items() if s == slot} == {"BUY", "SELL"}
    long.positions[long.slot_of[key_bid]]["BTCUSDT"] = long.limit("BTCUSDT", view.fair["BTCUSDT"])
    assert long.target(view, key_bid) < flat.target(view, key_bid)
    assert long.target(view, key_ask) < flat.target(view, key_ask)
    assert long.target(view, key_bid) < view.fair["BTCUSDT"] < long.target(view, key_ask)


def test_takers_and_momentum_traders_keep_their_positions_within_limits() -> None:
    views = market(5, 300)
    for bot in (NoiseTaker("taker-1", seeded(1, "bot", "t"), RULES, 1, "t-"),
                Momentum("momentum-1", seeded(1, "bot", "m"), RULES, 1, "m-")):  # fmt: skip
        bot.positions[0]["BTCUSDT"] = 2 * bot.limit("BTCUSDT", STARTS["BTCUSDT"])
        for view in views:
            action = bot.decide(view)
            if isinstance(action, Place) and action.order.symbol == "BTCUSDT":
                assert action.order.side == "SELL", "past its limit a bot only trades its position down"


def test_sizes_are_small_against_the_funding() -> None:
    unit = unit_notional(RULES["BTCUSDT"], STARTS["BTCUSDT"])
    assert unit == Decimal(100)  # 20 minimum notionals of 5 USDT


def config(**overrides: object) -> Config:
    argv: list[str] = []
    for name, value in overrides.items():
        argv.append(f"--{name.replace('_', '-')}")
        if value is not True:
            argv.append(str(value))
    return parse(argv, Settings())


def test_the_plan_spreads_the_rate_over_enough_accounts() -> None:
    bots = plan(config(rate=60, makers=2, takers=3, momentum=2, seed=1), orders_per_10s=100)
    per_account = ACCOUNT_SHARE * 100 / 10
    assert [b.protocol for b in bots].count("fix") == 1 and [b.protocol for b in bots].count("ws") == 1
    fix = next(b for b in bots if b.protocol == "fix")
    assert fix.kind == "taker" and len(fix.accounts) == 1
    assert next(b for b in bots if b.protocol == "ws").kind == "maker"
    for bot in bots:
        assert bot.rate / len(bot.accounts) <= per_account + 1e-9, bot
    accounts = [a for b in bots for a in b.accounts]
    assert accounts == list(range(2000, 2000 + len(accounts))), "numbered from 2000, clear of the demo account"
    assert math.isclose(sum(b.rate for b in bots if b.protocol != "fix"), 60 * (1 - 0.3 / 3))
    assert all(b.protocol != "fix" for b in plan(config(no_fix=True, seed=1), 100))


def test_a_configuration_that_cannot_run_is_refused() -> None:
    for bad in (["--rate", "0"], ["--makers", "0", "--takers", "0", "--momentum", "0"], ["--symbols", "btc/usdt"],
                ["--duration", "-1"], ["--url", "ftp://x"], ["--levels", "0"]):  # fmt: skip
        with pytest.raises(ConfigError):
            parse(bad, Settings())
    c = parse(["--symbols", "btcusdt, ETHUSDT", "--url", "http://127.0.0.1:9/"], Settings())
    assert c.symbols == ("BTCUSDT", "ETHUSDT") and c.ws_url == "ws://127.0.0.1:9"


def test_a_taker_only_takes_from_a_side_that_has_orders() -> None:
    bot = NoiseTaker("taker-1", seeded(1, "bot", "taker-1"), RULES, 1, "t-")
    empty = MarketView(fair=dict(STARTS))
    assert all(bot.decide(empty) is None for _ in range(50)), "an empty book that never traded: nothing to take"
    asks_only = MarketView(ask={s: p for s, p in STARTS.items()})
    actions = [bot.decide(asks_only) for _ in range(200)]
    sides = {a.order.side for a in actions if isinstance(a, Place)}
    assert sides == {"BUY"}, "only buys: there is no bid to sell to"


def test_takers_do_not_trade_into_a_side_far_off_the_last_trade() -> None:
    """After a restart the makers' quotes are gone: a user's bid 15% under the market may be the only bid left, and
    no taker sells into it (the venue's test of a restart rests such an order and finds it still open)."""
    last = {s: p for s, p in STARTS.items()}
    lone_bid = {s: RULES[s].bid_price(p * Decimal("0.85")) for s, p in STARTS.items()}
    near_ask = {s: RULES[s].ask_price(p * Decimal("1.001")) for s, p in STARTS.items()}
    view = MarketView(last=last, bid=lone_bid, ask=near_ask)
    taker = NoiseTaker("taker-1", seeded(1, "bot", "taker-1"), RULES, 1, "t-")
    sides = {a.order.side for a in (taker.decide(view) for _ in range(300)) if isinstance(a, Place)}
    assert sides == {"BUY"}, "the takers buy from the ask next to the market and never sell into the far bid"
    momentum = Momentum("momentum-1", seeded(1, "bot", "momentum-1"), RULES, 1, "m-")
    falling = [MarketView(last={s: p * (1 - Decimal(i) / 1000) for s, p in last.items()}, bid=lone_bid, ask=near_ask)
               for i in range(40)]  # fmt: skip
    assert not [a for a in (momentum.decide(v) for v in falling) if isinstance(a, Place)], "no sell into the far bid"
