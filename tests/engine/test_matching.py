"""Order types, priority, self-trade prevention, cancel and cancel-replace: exact event lists per command.

The symbol is tests.stubs.BTC: ticks and lots of 1, notional >= 50, band 10 % around the last trade.
Order ids are engine-wide (BTC and ETH share the counter); trade ids and book update ids are per symbol.
"""

from __future__ import annotations

import msgspec
import pytest

from tests.stubs import (
    BUY,
    FOK,
    GTC,
    IOC,
    LIMIT_MAKER,
    MARKET,
    SELL,
    SYM,
    SYM2,
    Driver,
    accepted,
    cancel,
    cancel_all,
    cancel_rejected,
    canceled,
    delta,
    limit,
    market,
    place,
    post_only,
    prevented,
    rejected,
    replace,
    replaced,
    state_without_seqs,
    trade,
)
from wire.commands import PlaceOrder
from wire.enums import CancelReason, SelfTradeMode, Side, TimeInForce
from wire.events import Event
from wire.reasons import RejectReason

USER = CancelReason.USER
IOC_REMAINDER = CancelReason.IOC_REMAINDER
FOK_NOT_FILLABLE = CancelReason.FOK_NOT_FILLABLE
SELF_TRADE = CancelReason.SELF_TRADE
EXPIRE_TAKER, EXPIRE_MAKER, EXPIRE_BOTH = (
    SelfTradeMode.EXPIRE_TAKER,
    SelfTradeMode.EXPIRE_MAKER,
    SelfTradeMode.EXPIRE_BOTH,
)


# ---- limit GTC -------------------------------------------------------------------------------------------------


def test_limit_gtc_rests_when_book_is_empty(d: Driver) -> None:
    events = d.apply(limit(1, SELL, 100, 5, client_oid="s1"))

    assert events == d.stamp([accepted(1, 1, SELL, 100, 5, client_oid="s1"), delta(1, SELL, 100, 5)])
    assert d.levels(SELL) == [(100, [(1, 5)])]
    assert d.levels(BUY) == []


def test_limit_gtc_rests_remainder_when_it_fills_a_smaller_maker(d: Driver) -> None:
    d.apply(limit(1, SELL, 100, 3))

    events = d.apply(limit(2, BUY, 101, 5))

    assert events == d.stamp(
        [
            accepted(2, 2, BUY, 101, 5),
            trade(1, 100, 3, BUY, maker=(1, 1, 0), taker=(2, 2, 2)),
            delta(2, SELL, 100, 0),
            delta(3, BUY, 101, 2),
        ]
    )
    assert d.levels(SELL) == []
    assert d.levels(BUY) == [(101, [(2, 2)])]


def test_limit_leaves_maker_partially_filled_when_maker_is_larger(d: Driver) -> None:
    d.apply(limit(1, SELL, 100, 10))

    events = d.apply(limit(2, BUY, 100, 4))

    assert events == d.stamp(
        [accepted(2, 2, BUY, 100, 4), trade(1, 100, 4, BUY, maker=(1, 1, 6), taker=(2, 2, 0)), delta(2, SELL, 100, 6)]
    )
    assert d.levels(SELL) == [(100, [(1, 6)])]
    assert d.levels(BUY) == []


def test_limit_rests_without_trading_when_it_does_not_cross(d: Driver) -> None:
    d.apply(limit(1, SELL, 101, 1))

    events = d.apply(limit(2, BUY, 100, 1))

    assert events == d.stamp([accepted(2, 2, BUY, 100, 1), delta(2, BUY, 100, 1)])
    assert d.depth(BUY) == [(100, 1)]
    assert d.depth(SELL) == [(101, 1)]


# ---- price-time priority ---------------------------------------------------------------------------------------


def test_taker_fills_oldest_order_first_when_a_level_holds_several(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 2), limit(2, SELL, 100, 3), limit(3, SELL, 100, 4))

    events = d.apply(limit(4, BUY, 100, 6))

    assert events == d.stamp(
        [
            accepted(4, 4, BUY, 100, 6),
            trade(1, 100, 2, BUY, maker=(1, 1, 0), taker=(4, 4, 4)),
            trade(2, 100, 3, BUY, maker=(2, 2, 0), taker=(4, 4, 1)),
            trade(3, 100, 1, BUY, maker=(3, 3, 3), taker=(4, 4, 0)),
            delta(4, SELL, 100, 3),
        ]
    )
    assert d.levels(SELL) == [(100, [(3, 3)])]


def test_buy_taker_fills_lowest_ask_first_when_asks_arrive_worst_first(d: Driver) -> None:
    d.run(limit(1, SELL, 102, 1), limit(1, SELL, 101, 1), limit(1, SELL, 100, 1))

    events = d.apply(limit(2, BUY, 101, 3))

    assert events == d.stamp(
        [
            accepted(4, 2, BUY, 101, 3),
            trade(1, 100, 1, BUY, maker=(3, 1, 0), taker=(4, 2, 2)),
            trade(2, 101, 1, BUY, maker=(2, 1, 0), taker=(4, 2, 1)),
            delta(4, SELL, 100, 0),
            delta(5, SELL, 101, 0),
            delta(6, BUY, 101, 1),
        ]
    )
    assert d.levels(SELL) == [(102, [(1, 1)])]
    assert d.levels(BUY) == [(101, [(4, 1)])]


def test_sell_taker_fills_highest_bid_first_when_bids_arrive_worst_first(d: Driver) -> None:
    d.run(limit(1, BUY, 98, 1), limit(1, BUY, 99, 1), limit(1, BUY, 100, 1))

    events = d.apply(limit(2, SELL, 99, 3))

    assert events == d.stamp(
        [
            accepted(4, 2, SELL, 99, 3),
            trade(1, 100, 1, SELL, maker=(3, 1, 0), taker=(4, 2, 2)),
            trade(2, 99, 1, SELL, maker=(2, 1, 0), taker=(4, 2, 1)),
            delta(4, BUY, 100, 0),
            delta(5, BUY, 99, 0),
            delta(6, SELL, 99, 1),
        ]
    )
    assert d.levels(BUY) == [(98, [(1, 1)])]
    assert d.levels(SELL) == [(99, [(4, 1)])]


def test_trade_price_is_the_maker_price_when_taker_sweeps_several_levels(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 1), limit(2, SELL, 101, 2), limit(1, SELL, 103, 3))

    events = d.apply(limit(3, BUY, 105, 6))

    assert events == d.stamp(
        [
            accepted(4, 3, BUY, 105, 6),
            trade(1, 100, 1, BUY, maker=(1, 1, 0), taker=(4, 3, 5)),
            trade(2, 101, 2, BUY, maker=(2, 2, 0), taker=(4, 3, 3)),
            trade(3, 103, 3, BUY, maker=(3, 1, 0), taker=(4, 3, 0)),
            delta(4, SELL, 100, 0),
            delta(5, SELL, 101, 0),
            delta(6, SELL, 103, 0),
        ]
    )
    assert d.levels(SELL) == []
    assert d.levels(BUY) == []


# ---- market ----------------------------------------------------------------------------------------------------


def test_market_buy_reaches_the_whole_book_when_there_is_no_last_trade(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 2), limit(1, SELL, 5_000, 1))

    events = d.apply(market(2, BUY, 5))

    assert events == d.stamp(
        [
            accepted(3, 2, BUY, 0, 5, type=MARKET, tif=IOC),
            trade(1, 100, 2, BUY, maker=(1, 1, 0), taker=(3, 2, 3)),
            trade(2, 5_000, 1, BUY, maker=(2, 1, 0), taker=(3, 2, 2)),
            canceled(3, 2, 2, IOC_REMAINDER),
            delta(3, SELL, 100, 0),
            delta(4, SELL, 5_000, 0),
        ]
    )
    assert d.levels(SELL) == []


def test_market_buy_stops_at_the_band_edge_when_there_is_a_last_trade(d: Driver) -> None:
    # asks placed before any trade (no band yet), then a trade at 100 sets the band to [90, 110]
    d.run(limit(1, SELL, 111, 1), limit(1, SELL, 110, 1), limit(1, SELL, 105, 1))
    d.run(limit(1, SELL, 100, 1), limit(2, BUY, 100, 1))

    events = d.apply(market(2, BUY, 5))

    # the band is fixed when the order enters: the trade at 105 does not widen it to 115
    assert events == d.stamp(
        [
            accepted(6, 2, BUY, 0, 5, type=MARKET, tif=IOC),
            trade(2, 105, 1, BUY, maker=(3, 1, 0), taker=(6, 2, 4)),
            trade(3, 110, 1, BUY, maker=(2, 1, 0), taker=(6, 2, 3)),
            canceled(6, 2, 3, IOC_REMAINDER),
            delta(6, SELL, 105, 0),
            delta(7, SELL, 110, 0),
        ]
    )
    assert d.levels(SELL) == [(111, [(1, 1)])]


def test_market_sell_stops_at_the_band_edge_when_there_is_a_last_trade(d: Driver) -> None:
    d.run(limit(1, BUY, 89, 1), limit(1, BUY, 90, 1), limit(1, BUY, 95, 1))
    d.run(limit(1, BUY, 100, 1), limit(2, SELL, 100, 1))

    events = d.apply(market(2, SELL, 5))

    assert events == d.stamp(
        [
            accepted(6, 2, SELL, 0, 5, type=MARKET, tif=IOC),
            trade(2, 95, 1, SELL, maker=(3, 1, 0), taker=(6, 2, 4)),
            trade(3, 90, 1, SELL, maker=(2, 1, 0), taker=(6, 2, 3)),
            canceled(6, 2, 3, IOC_REMAINDER),
            delta(6, BUY, 95, 0),
            delta(7, BUY, 90, 0),
        ]
    )
    assert d.levels(BUY) == [(89, [(1, 1)])]


@pytest.mark.parametrize(
    ("side", "inside", "outside"), [(BUY, 111, 112), (SELL, 91, 90)], ids=["buy-stops-at-111", "sell-stops-at-91"]
)
def test_market_band_edge_rounds_inwards_when_last_price_is_not_a_multiple(
    d: Driver, side: Side, inside: int, outside: int
) -> None:
    # last 101, band 10 %: [ceil(90.9), floor(111.1)] = [91, 111]
    maker_side = SELL if side is BUY else BUY
    d.run(limit(1, maker_side, outside, 1), limit(1, maker_side, inside, 1))
    d.run(limit(1, SELL, 101, 1), limit(2, BUY, 101, 1))

    events = d.apply(market(2, side, 2))

    assert events == d.stamp(
        [
            accepted(5, 2, side, 0, 2, type=MARKET, tif=IOC),
            trade(2, inside, 1, side, maker=(2, 1, 0), taker=(5, 2, 1)),
            canceled(5, 2, 1, IOC_REMAINDER),
            delta(5, maker_side, inside, 0),
        ]
    )
    assert d.levels(maker_side) == [(outside, [(1, 1)])]


def test_market_order_is_canceled_ioc_remainder_when_book_is_empty(d: Driver) -> None:
    events = d.apply(market(1, BUY, 3))

    assert events == d.stamp([accepted(1, 1, BUY, 0, 3, type=MARKET, tif=IOC), canceled(1, 1, 3, IOC_REMAINDER)])


def test_market_gtc_is_rejected_invalid_order_type(d: Driver) -> None:
    events = d.apply(place(1, BUY, MARKET, GTC, 0, 3))

    assert events == d.stamp([rejected(1, RejectReason.INVALID_ORDER_TYPE, "type=MARKET tif=GTC")])
    # the refused command created no order; the next order's id is its own command's in_seq
    assert d.apply(limit(1, BUY, 100, 1)) == d.stamp([accepted(d.in_seq, 1, BUY, 100, 1), delta(1, BUY, 100, 1)])


def test_market_fok_is_canceled_when_the_book_cannot_fill_it(d: Driver) -> None:
    d.apply(limit(1, SELL, 100, 2))

    events = d.apply(market(2, BUY, 3, tif=FOK))

    assert events == d.stamp([accepted(2, 2, BUY, 0, 3, type=MARKET, tif=FOK), canceled(2, 2, 3, FOK_NOT_FILLABLE)])
    assert d.levels(SELL) == [(100, [(1, 2)])]


def test_market_fok_fills_when_the_book_can_fill_it(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 2), limit(1, SELL, 101, 2))

    events = d.apply(market(2, BUY, 3, tif=FOK))

    assert events == d.stamp(
        [
            accepted(3, 2, BUY, 0, 3, type=MARKET, tif=FOK),
            trade(1, 100, 2, BUY, maker=(1, 1, 0), taker=(3, 2, 1)),
            trade(2, 101, 1, BUY, maker=(2, 1, 1), taker=(3, 2, 0)),
            delta(3, SELL, 100, 0),
            delta(4, SELL, 101, 1),
        ]
    )


# ---- IOC -------------------------------------------------------------------------------------------------------


def test_ioc_cancels_its_remainder_when_partially_filled(d: Driver) -> None:
    d.apply(limit(1, SELL, 100, 2))

    events = d.apply(limit(2, BUY, 101, 5, tif=IOC))

    assert events == d.stamp(
        [
            accepted(2, 2, BUY, 101, 5, tif=IOC),
            trade(1, 100, 2, BUY, maker=(1, 1, 0), taker=(2, 2, 3)),
            canceled(2, 2, 3, IOC_REMAINDER),
            delta(2, SELL, 100, 0),
        ]
    )
    assert d.levels(BUY) == []
    assert d.levels(SELL) == []


def test_ioc_is_canceled_without_touching_the_book_when_it_does_not_cross(d: Driver) -> None:
    d.apply(limit(1, SELL, 100, 2))

    events = d.apply(limit(2, BUY, 99, 5, tif=IOC))

    assert events == d.stamp([accepted(2, 2, BUY, 99, 5, tif=IOC), canceled(2, 2, 5, IOC_REMAINDER)])
    assert d.levels(SELL) == [(100, [(1, 2)])]
    assert d.levels(BUY) == []


# ---- FOK -------------------------------------------------------------------------------------------------------


def test_fok_fills_completely_when_enough_quantity_lies_across_levels(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 2), limit(2, SELL, 101, 2))

    events = d.apply(limit(3, BUY, 101, 4, tif=FOK))

    assert events == d.stamp(
        [
            accepted(3, 3, BUY, 101, 4, tif=FOK),
            trade(1, 100, 2, BUY, maker=(1, 1, 0), taker=(3, 3, 2)),
            trade(2, 101, 2, BUY, maker=(2, 2, 0), taker=(3, 3, 0)),
            delta(3, SELL, 100, 0),
            delta(4, SELL, 101, 0),
        ]
    )


@pytest.mark.parametrize(("price", "qty"), [(101, 5), (100, 3)], ids=["quantity-short", "price-limits-quantity"])
def test_fok_is_canceled_not_fillable_without_touching_the_book_when_it_cannot_fill(
    d: Driver, price: int, qty: int
) -> None:
    d.run(limit(1, SELL, 100, 2), limit(2, SELL, 101, 2))
    before = d.levels(SELL)

    events = d.apply(limit(3, BUY, price, qty, tif=FOK))

    assert events == d.stamp([accepted(3, 3, BUY, price, qty, tif=FOK), canceled(3, 3, qty, FOK_NOT_FILLABLE)])
    assert d.levels(SELL) == before
    assert d.levels(BUY) == []


def test_fok_is_not_fillable_when_own_order_comes_before_enough_quantity(d: Driver) -> None:
    d.run(limit(2, SELL, 100, 2), limit(1, SELL, 100, 5), limit(3, SELL, 100, 5))
    before = d.levels(SELL)

    events = d.apply(limit(1, BUY, 100, 3, tif=FOK))

    assert events == d.stamp([accepted(4, 1, BUY, 100, 3, tif=FOK), canceled(4, 1, 3, FOK_NOT_FILLABLE)])
    assert d.levels(SELL) == before


def test_fok_fills_when_own_order_lies_beyond_the_quantity_it_needs(d: Driver) -> None:
    d.run(limit(2, SELL, 100, 3), limit(1, SELL, 100, 5))

    events = d.apply(limit(1, BUY, 100, 3, tif=FOK))

    assert events == d.stamp(
        [
            accepted(3, 1, BUY, 100, 3, tif=FOK),
            trade(1, 100, 3, BUY, maker=(1, 2, 0), taker=(3, 1, 0)),
            delta(3, SELL, 100, 5),
        ]
    )
    assert d.levels(SELL) == [(100, [(2, 5)])]


# ---- LIMIT_MAKER (post-only) ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("price", [100, 101])
def test_post_only_is_rejected_post_only_would_take_when_it_would_cross(d: Driver, price: int) -> None:
    d.apply(limit(1, SELL, 100, 2))

    events = d.apply(post_only(2, BUY, price, 1))

    assert events == d.stamp([rejected(2, RejectReason.POST_ONLY_WOULD_TAKE, f"price={price}")])
    assert d.levels(SELL) == [(100, [(1, 2)])]
    assert d.levels(BUY) == []


def test_post_only_rests_when_it_would_not_cross(d: Driver) -> None:
    d.apply(limit(1, SELL, 100, 2))

    events = d.apply(post_only(2, BUY, 99, 1))

    assert events == d.stamp([accepted(2, 2, BUY, 99, 1, type=LIMIT_MAKER), delta(2, BUY, 99, 1)])
    assert d.engine.matchers["BTC"].book.orders[2].type is LIMIT_MAKER


def test_post_only_resting_order_is_filled_as_a_maker(d: Driver) -> None:
    d.apply(post_only(1, SELL, 100, 2))

    events = d.apply(limit(2, BUY, 100, 2))

    assert events == d.stamp(
        [accepted(2, 2, BUY, 100, 2), trade(1, 100, 2, BUY, maker=(1, 1, 0), taker=(2, 2, 0)), delta(2, SELL, 100, 0)]
    )


@pytest.mark.parametrize("tif", [IOC, FOK])
def test_post_only_is_rejected_invalid_order_type_when_tif_is_not_gtc(d: Driver, tif: TimeInForce) -> None:
    events = d.apply(place(1, BUY, LIMIT_MAKER, tif, 100, 1))

    assert events == d.stamp([rejected(1, RejectReason.INVALID_ORDER_TYPE, f"type=LIMIT_MAKER tif={tif.name}")])


# ---- self-trade prevention (expire taker) --------------------------------------------------------------------------


def test_self_trade_cancels_taker_remainder_when_it_reaches_its_own_order(d: Driver) -> None:
    d.run(limit(2, SELL, 100, 2), limit(1, SELL, 100, 3), limit(2, SELL, 100, 4))

    events = d.apply(limit(1, BUY, 101, 10))

    # the fill before the own order stands; the own order and everything behind it stay untouched
    assert events == d.stamp(
        [
            accepted(4, 1, BUY, 101, 10),
            trade(1, 100, 2, BUY, maker=(1, 2, 0), taker=(4, 1, 8)),
            prevented(1, 1, 100, EXPIRE_TAKER, taker=(4, 8), maker=(2, 0)),  # the record of the stop, first
            canceled(4, 1, 8, SELF_TRADE),
            delta(4, SELL, 100, 7),
        ]
    )
    assert d.levels(SELL) == [(100, [(2, 3), (3, 4)])]
    assert d.levels(BUY) == []


def test_self_trade_emits_no_delta_for_the_level_when_own_order_heads_the_next_level(d: Driver) -> None:
    d.run(limit(2, SELL, 100, 2), limit(1, SELL, 101, 3))

    events = d.apply(limit(1, BUY, 102, 5))

    assert events == d.stamp(
        [
            accepted(3, 1, BUY, 102, 5),
            trade(1, 100, 2, BUY, maker=(1, 2, 0), taker=(3, 1, 3)),
            prevented(1, 1, 101, EXPIRE_TAKER, taker=(3, 3), maker=(2, 0)),
            canceled(3, 1, 3, SELF_TRADE),
            delta(3, SELL, 100, 0),
        ]
    )
    assert d.levels(SELL) == [(101, [(2, 3)])]


def test_self_trade_emits_no_trade_and_no_delta_when_own_order_is_at_the_touch(d: Driver) -> None:
    # regression: the engine used to emit a BookDelta for the touch level although nothing there changed
    d.apply(limit(1, SELL, 100, 5))
    before = state_without_seqs(d.engine)

    events = d.apply(limit(1, BUY, 100, 5))

    assert events == d.stamp(
        [
            accepted(2, 1, BUY, 100, 5),
            prevented(1, 1, 100, EXPIRE_TAKER, taker=(2, 5), maker=(1, 0)),
            canceled(2, 1, 5, SELF_TRADE),
        ]
    )
    assert d.levels(SELL) == [(100, [(1, 5)])]
    after = state_without_seqs(d.engine)
    # no update id was used either; only the prevented match was counted
    assert after.symbols == [msgspec.structs.replace(s, prevented_id=int(s.symbol == SYM)) for s in before.symbols]


@pytest.mark.parametrize("tif", [IOC, FOK])
def test_self_trade_cancels_market_order_as_self_trade_when_own_order_is_at_the_touch(
    d: Driver, tif: TimeInForce
) -> None:
    d.apply(limit(1, SELL, 100, 5))

    events = d.apply(market(1, BUY, 2, tif=tif))

    stop: list[Event]
    if tif is IOC:  # reached its own order: a prevented match
        stop = [prevented(1, 1, 100, EXPIRE_TAKER, taker=(2, 2), maker=(1, 0)), canceled(2, 1, 2, SELF_TRADE)]
    else:  # FOK: refused before matching (its own order leaves nothing it can fill), so nothing was prevented
        stop = [canceled(2, 1, 2, FOK_NOT_FILLABLE)]
    assert events == d.stamp([accepted(2, 1, BUY, 0, 2, type=MARKET, tif=tif), *stop])


def test_self_trade_prevention_ignores_own_orders_on_another_symbol(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 5, symbol=SYM2), limit(2, SELL, 100, 5))

    events = d.apply(limit(1, BUY, 100, 5))

    assert events == d.stamp(
        [accepted(3, 1, BUY, 100, 5), trade(1, 100, 5, BUY, maker=(2, 2, 0), taker=(3, 1, 0)), delta(2, SELL, 100, 0)]
    )


# ---- cancel ----------------------------------------------------------------------------------------------------


def test_cancel_by_order_id_removes_the_order(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 5, client_oid="a"), limit(2, SELL, 100, 3))

    events = d.apply(cancel(1, 1))

    assert events == d.stamp([canceled(1, 1, 5, USER, client_oid="a"), delta(3, SELL, 100, 3)])
    assert d.levels(SELL) == [(100, [(2, 3)])]


def test_cancel_by_client_order_id_removes_the_order(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 5, client_oid="a"), limit(2, SELL, 100, 3, client_oid="a"))

    events = d.apply(cancel(1, client_oid="a"))

    assert events == d.stamp([canceled(1, 1, 5, USER, client_oid="a"), delta(3, SELL, 100, 3)])
    assert d.levels(SELL) == [(100, [(2, 3)])]


def test_cancel_by_order_id_and_matching_client_order_id_removes_the_order(d: Driver) -> None:
    d.apply(limit(1, BUY, 100, 5, client_oid="a"))

    events = d.apply(cancel(1, 1, client_oid="a"))

    assert events == d.stamp([canceled(1, 1, 5, USER, client_oid="a"), delta(2, BUY, 100, 0)])


def test_cancel_of_partially_filled_order_reports_its_open_quantity(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 5), limit(2, BUY, 100, 2))

    events = d.apply(cancel(1, 1))

    assert events == d.stamp([canceled(1, 1, 3, USER), delta(3, SELL, 100, 0)])


@pytest.mark.parametrize(
    ("account", "order_id", "client_oid"),
    [
        (1, 99, ""),  # no such order
        (2, 1, ""),  # another account's order, by id
        (2, 0, "a"),  # another account's order, by client order id
        (1, 1, "b"),  # the id and the client order id disagree
        (1, 0, "zz"),  # no such client order id
        (1, 0, ""),  # neither given
    ],
    ids=[
        "unknown-id",
        "other-account-id",
        "other-account-client-oid",
        "id-and-client-oid-disagree",
        "unknown-coid",
        "none",
    ],
)
def test_cancel_when_order_is_not_found_rejects_unknown_order(
    d: Driver, account: int, order_id: int, client_oid: str
) -> None:
    d.run(limit(1, SELL, 100, 5, client_oid="a"))
    before = state_without_seqs(d.engine)

    events = d.apply(cancel(account, order_id, client_oid=client_oid))

    detail = f"order_id={order_id} client_oid={client_oid!r}"
    assert events == d.stamp(
        [cancel_rejected(account, RejectReason.UNKNOWN_ORDER, detail, order_id=order_id, client_oid=client_oid)]
    )
    assert state_without_seqs(d.engine) == before


@pytest.mark.parametrize("closed_by", ["fill", "cancel", "ioc"])
def test_cancel_when_order_is_closed_rejects_unknown_order(d: Driver, closed_by: str) -> None:
    if closed_by == "fill":
        d.run(limit(1, SELL, 100, 5), limit(2, BUY, 100, 5))
    elif closed_by == "cancel":
        d.run(limit(1, SELL, 100, 5), cancel(1, 1))
    else:
        d.run(limit(1, SELL, 100, 5, tif=IOC))

    events = d.apply(cancel(1, 1))

    detail = "order_id=1 client_oid=''"
    assert events == d.stamp([cancel_rejected(1, RejectReason.UNKNOWN_ORDER, detail, order_id=1)])


def test_cancel_all_cancels_every_open_order_of_the_account_on_the_symbol(d: Driver) -> None:
    d.run(
        limit(1, SELL, 101, 1),
        limit(2, SELL, 101, 2),
        limit(1, BUY, 99, 3),
        limit(1, SELL, 102, 4, client_oid="x"),
        limit(1, SELL, 101, 5, symbol=SYM2),
    )

    events = d.apply(cancel_all(1))

    assert events == d.stamp(
        [
            canceled(1, 1, 1, USER),
            canceled(3, 1, 3, USER),
            canceled(4, 1, 4, USER, client_oid="x"),
            delta(5, SELL, 101, 2),
            delta(6, BUY, 99, 0),
            delta(7, SELL, 102, 0),
        ]
    )
    assert d.levels(SELL) == [(101, [(2, 2)])]
    assert d.levels(BUY) == []
    assert d.levels(SELL, SYM2) == [(101, [(5, 5)])]


def test_cancel_all_when_account_has_no_open_orders_rejects_unknown_order(d: Driver) -> None:
    d.run(limit(2, SELL, 101, 2), limit(1, SELL, 101, 5, symbol=SYM2))

    events = d.apply(cancel_all(1))

    assert events == d.stamp([cancel_rejected(1, RejectReason.UNKNOWN_ORDER, "no open orders")])


# ---- cancel-replace --------------------------------------------------------------------------------------------


def test_replace_lowering_qty_at_same_price_keeps_order_id_and_queue_priority(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 5, client_oid="a"), limit(2, SELL, 100, 5))

    events = d.apply(replace(1, 1, 100, 3))

    assert events == d.stamp([replaced(1, 1, 1, 100, 3, kept=True, client_oid="a"), delta(3, SELL, 100, 8)])
    assert d.levels(SELL) == [(100, [(1, 3), (2, 5)])]

    taker = d.apply(limit(3, BUY, 100, 3))
    taker_id = d.in_seq

    assert taker == d.stamp(
        [
            accepted(taker_id, 3, BUY, 100, 3),
            trade(1, 100, 3, BUY, maker=(1, 1, 0), taker=(taker_id, 3, 0)),
            delta(4, SELL, 100, 5),
        ]
    )


def test_replace_raising_qty_at_same_price_gets_new_order_id_and_loses_priority(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 5, client_oid="a"), limit(2, SELL, 100, 5))

    events = d.apply(replace(1, 1, 100, 6))

    assert events == d.stamp([replaced(1, 3, 1, 100, 6, kept=False, client_oid="a"), delta(3, SELL, 100, 11)])
    assert d.levels(SELL) == [(100, [(2, 5), (3, 6)])]

    taker = d.apply(limit(3, BUY, 100, 5))

    assert taker == d.stamp(
        [accepted(4, 3, BUY, 100, 5), trade(1, 100, 5, BUY, maker=(2, 2, 0), taker=(4, 3, 0)), delta(4, SELL, 100, 6)]
    )


def test_replace_to_a_new_price_gets_new_order_id_and_moves_level(d: Driver) -> None:
    d.run(limit(1, SELL, 102, 5), limit(1, SELL, 100, 2))

    events = d.apply(replace(1, 2, 102, 1))

    assert events == d.stamp([replaced(2, 3, 1, 102, 1, kept=False), delta(3, SELL, 100, 0), delta(4, SELL, 102, 6)])
    assert d.levels(SELL) == [(102, [(1, 5), (3, 1)])]


def test_replace_to_a_crossing_price_trades_immediately(d: Driver) -> None:
    d.run(limit(1, BUY, 98, 2), limit(2, SELL, 100, 3))

    events = d.apply(replace(2, 2, 98, 3))

    assert events == d.stamp(
        [
            replaced(2, 3, 2, 98, 3, kept=False),
            trade(1, 98, 2, SELL, maker=(1, 1, 0), taker=(3, 2, 1)),
            delta(3, SELL, 100, 0),
            delta(4, BUY, 98, 0),
            delta(5, SELL, 98, 1),
        ]
    )
    assert d.levels(SELL) == [(98, [(3, 1)])]
    assert d.levels(BUY) == []


def test_replace_to_a_crossing_price_stops_at_own_order(d: Driver) -> None:
    d.run(limit(1, BUY, 98, 2), limit(1, SELL, 100, 3))

    events = d.apply(replace(1, 2, 98, 3))

    assert events == d.stamp(
        [
            replaced(2, 3, 1, 98, 3, kept=False),
            prevented(1, 1, 98, EXPIRE_TAKER, taker=(3, 3), maker=(1, 0)),
            canceled(3, 1, 3, SELF_TRADE),
            delta(3, SELL, 100, 0),
        ]
    )
    assert d.levels(SELL) == []
    assert d.levels(BUY) == [(98, [(1, 2)])]


@pytest.mark.parametrize("new_client_oid", ["", "a"])
def test_replace_when_nothing_changes_rejects_replace_no_change(d: Driver, new_client_oid: str) -> None:
    d.apply(limit(1, SELL, 100, 5, client_oid="a"))
    before = state_without_seqs(d.engine)

    events = d.apply(replace(1, 1, 100, 5, new_client_oid=new_client_oid))

    detail = "same price, quantity and client order id"
    assert events == d.stamp([cancel_rejected(1, RejectReason.REPLACE_NO_CHANGE, detail, order_id=1)])
    assert state_without_seqs(d.engine) == before


def test_replace_of_client_order_id_only_keeps_priority_and_renames(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 5, client_oid="a"), limit(2, SELL, 100, 5))

    events = d.apply(replace(1, 1, 100, 5, new_client_oid="b"))

    assert events == d.stamp([replaced(1, 1, 1, 100, 5, kept=True, client_oid="b")])
    assert d.levels(SELL) == [(100, [(1, 5), (2, 5)])]
    old = d.apply(cancel(1, client_oid="a"))
    assert old == d.stamp([cancel_rejected(1, RejectReason.UNKNOWN_ORDER, "order_id=0 client_oid='a'", client_oid="a")])
    new = d.apply(cancel(1, client_oid="b"))
    assert new == d.stamp([canceled(1, 1, 5, USER, client_oid="b"), delta(3, SELL, 100, 5)])


def test_replace_by_client_order_id_finds_the_order(d: Driver) -> None:
    d.apply(limit(1, BUY, 100, 5, client_oid="a"))

    events = d.apply(replace(1, 0, 99, 5, client_oid="a", new_client_oid="b"))

    assert events == d.stamp(
        [replaced(1, 2, 1, 99, 5, kept=False, client_oid="b"), delta(2, BUY, 100, 0), delta(3, BUY, 99, 5)]
    )
    assert d.engine.matchers["BTC"].book.by_client_oid.keys() == {(1, "b")}


def test_replace_of_partially_filled_order_sets_the_new_open_quantity(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 5), limit(2, BUY, 100, 2))  # order 1 has 3 open

    same = d.apply(replace(1, 1, 100, 3))

    detail = "same price, quantity and client order id"
    assert same == d.stamp([cancel_rejected(1, RejectReason.REPLACE_NO_CHANGE, detail, order_id=1)])

    lower = d.apply(replace(1, 1, 100, 2))

    assert lower == d.stamp([replaced(1, 1, 1, 100, 2, kept=True), delta(3, SELL, 100, 2)])

    higher = d.apply(replace(1, 1, 100, 4))

    # re-entered under a new id: the replace's own in_seq
    assert higher == d.stamp([replaced(1, d.in_seq, 1, 100, 4, kept=False), delta(4, SELL, 100, 4)])
    assert d.levels(SELL) == [(100, [(d.in_seq, 4)])]


def test_replace_of_post_only_to_a_crossing_price_rejects_post_only_would_take(d: Driver) -> None:
    d.run(limit(1, BUY, 99, 1), post_only(2, SELL, 101, 1))
    before = state_without_seqs(d.engine)

    events = d.apply(replace(2, 2, 99, 1))

    assert events == d.stamp([cancel_rejected(2, RejectReason.POST_ONLY_WOULD_TAKE, "price=99", order_id=2)])
    assert state_without_seqs(d.engine) == before


def test_replace_of_post_only_to_a_resting_price_stays_post_only(d: Driver) -> None:
    d.run(limit(1, BUY, 99, 1), post_only(2, SELL, 101, 1))

    events = d.apply(replace(2, 2, 100, 1))

    assert events == d.stamp([replaced(2, 3, 2, 100, 1, kept=False), delta(3, SELL, 101, 0), delta(4, SELL, 100, 1)])
    assert d.engine.matchers["BTC"].book.orders[3].type is LIMIT_MAKER
    crossing = d.apply(replace(2, 3, 99, 1))
    assert crossing == d.stamp([cancel_rejected(2, RejectReason.POST_ONLY_WOULD_TAKE, "price=99", order_id=3)])


def test_replace_when_new_client_order_id_is_open_rejects_duplicate_client_order_id(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 1, client_oid="a"), limit(1, SELL, 101, 1, client_oid="b"))
    before = state_without_seqs(d.engine)

    events = d.apply(replace(1, 1, 100, 1, new_client_oid="b"))

    detail = "client_oid='b' is open"
    assert events == d.stamp([cancel_rejected(1, RejectReason.DUPLICATE_CLIENT_ORDER_ID, detail, order_id=1)])
    assert state_without_seqs(d.engine) == before


@pytest.mark.parametrize(("account", "order_id"), [(1, 99), (2, 1)], ids=["unknown-id", "other-account"])
def test_replace_when_order_is_not_found_rejects_unknown_order(d: Driver, account: int, order_id: int) -> None:
    d.apply(limit(1, SELL, 100, 5))

    events = d.apply(replace(account, order_id, 101, 5))

    detail = f"order_id={order_id} client_oid=''"
    assert events == d.stamp([cancel_rejected(account, RejectReason.UNKNOWN_ORDER, detail, order_id=order_id)])
    assert d.levels(SELL) == [(100, [(1, 5)])]


# ---- client order ids ------------------------------------------------------------------------------------------


def test_place_when_client_order_id_is_open_rejects_duplicate_client_order_id(d: Driver) -> None:
    d.apply(limit(1, SELL, 100, 1, client_oid="a"))
    before = state_without_seqs(d.engine)

    events = d.apply(limit(1, BUY, 90, 1, client_oid="a"))

    detail = "client_oid='a' is open"
    assert events == d.stamp([rejected(1, RejectReason.DUPLICATE_CLIENT_ORDER_ID, detail, client_oid="a")])
    assert state_without_seqs(d.engine) == before


@pytest.mark.parametrize(("closed_by", "update_id"), [("fill", 3), ("cancel", 4), ("ioc", 2)])
def test_place_reuses_client_order_id_when_the_previous_order_is_closed(
    d: Driver, closed_by: str, update_id: int
) -> None:
    if closed_by == "fill":
        d.run(limit(1, SELL, 100, 1, client_oid="a"), limit(2, BUY, 100, 1))
    elif closed_by == "cancel":
        d.run(limit(1, SELL, 100, 1, client_oid="a"), limit(2, BUY, 90, 1), cancel(1, 1))
    else:
        d.run(limit(1, SELL, 100, 1, client_oid="a", tif=IOC), limit(2, BUY, 90, 1))

    events = d.apply(limit(1, SELL, 101, 1, client_oid="a"))

    assert events == d.stamp([accepted(d.in_seq, 1, SELL, 101, 1, client_oid="a"), delta(update_id, SELL, 101, 1)])


def test_place_accepts_a_client_order_id_that_another_account_has_open(d: Driver) -> None:
    d.apply(limit(1, SELL, 100, 1, client_oid="a"))

    events = d.apply(limit(2, SELL, 101, 1, client_oid="a"))

    assert events == d.stamp([accepted(2, 2, SELL, 101, 1, client_oid="a"), delta(2, SELL, 101, 1)])


def test_place_accepts_a_client_order_id_open_on_another_symbol(d: Driver) -> None:
    # uniqueness is per account and symbol, as on Binance (a cancel names its symbol)
    d.apply(limit(1, SELL, 100, 1, client_oid="a", symbol=SYM2))

    events = d.apply(limit(1, SELL, 101, 1, client_oid="a"))

    assert events == d.stamp([accepted(2, 1, SELL, 101, 1, client_oid="a"), delta(1, SELL, 101, 1)])


def test_place_never_treats_an_empty_client_order_id_as_duplicate(d: Driver) -> None:
    d.apply(limit(1, SELL, 100, 1))

    events = d.apply(limit(1, SELL, 101, 1))

    assert events == d.stamp([accepted(2, 1, SELL, 101, 1), delta(2, SELL, 101, 1)])


def _with_stp(cmd: PlaceOrder, stp: SelfTradeMode) -> PlaceOrder:
    return msgspec.structs.replace(cmd, stp=stp)


def test_self_trade_expire_maker_cancels_own_resting_order_and_goes_on(d: Driver) -> None:
    d.run(limit(2, SELL, 100, 2), limit(1, SELL, 100, 3), limit(2, SELL, 100, 4))

    events = d.apply(_with_stp(limit(1, BUY, 101, 10), SelfTradeMode.EXPIRE_MAKER))

    assert events == d.stamp(
        [
            accepted(4, 1, BUY, 101, 10, stp=SelfTradeMode.EXPIRE_MAKER),  # the event carries the mode
            trade(1, 100, 2, BUY, maker=(1, 2, 0), taker=(4, 1, 8)),
            prevented(1, 1, 100, EXPIRE_MAKER, taker=(4, 0), maker=(2, 3)),
            canceled(2, 1, 3, SELF_TRADE),  # the own resting order, never traded
            trade(2, 100, 4, BUY, maker=(3, 2, 0), taker=(4, 1, 4)),
            delta(4, SELL, 100, 0),
            delta(5, BUY, 101, 4),  # the rest rests
        ]
    )


def test_self_trade_expire_both_cancels_own_resting_order_and_the_incoming_rest(d: Driver) -> None:
    d.run(limit(2, SELL, 100, 2), limit(1, SELL, 100, 3), limit(2, SELL, 100, 4))

    events = d.apply(_with_stp(limit(1, BUY, 101, 10), SelfTradeMode.EXPIRE_BOTH))

    assert events == d.stamp(
        [
            accepted(4, 1, BUY, 101, 10, stp=SelfTradeMode.EXPIRE_BOTH),
            trade(1, 100, 2, BUY, maker=(1, 2, 0), taker=(4, 1, 8)),
            prevented(1, 1, 100, EXPIRE_BOTH, taker=(4, 8), maker=(2, 3)),
            canceled(2, 1, 3, SELF_TRADE),
            canceled(4, 1, 8, SELF_TRADE),
            delta(4, SELL, 100, 4),
        ]
    )
    assert d.levels(SELL) == [(100, [(3, 4)])]


def test_self_trade_mode_none_trades_with_its_own_resting_order(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 3), limit(2, SELL, 101, 4))

    events = d.apply(_with_stp(limit(1, BUY, 101, 5), SelfTradeMode.NONE))

    assert events == d.stamp(
        [
            accepted(3, 1, BUY, 101, 5, stp=SelfTradeMode.NONE),
            trade(1, 100, 3, BUY, maker=(1, 1, 0), taker=(3, 1, 2)),  # Binance's NONE: nothing is prevented
            trade(2, 101, 2, BUY, maker=(2, 2, 2), taker=(3, 1, 0)),
            delta(3, SELL, 100, 0),
            delta(4, SELL, 101, 2),
        ]
    )


def test_fok_with_expire_maker_counts_past_its_own_order(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 3), limit(2, SELL, 100, 4))

    events = d.apply(_with_stp(limit(1, BUY, 100, 4, tif=FOK), SelfTradeMode.EXPIRE_MAKER))

    assert [type(e).__name__ for e in events] == [
        "OrderAccepted",
        "MatchPrevented",
        "OrderCanceled",
        "TradeExecuted",
        "BookDelta",
    ]
    assert d.levels(SELL) == []


def test_replace_that_re_enters_keeps_the_order_self_trade_mode(d: Driver) -> None:
    d.run(limit(1, SELL, 102, 3), _with_stp(limit(1, BUY, 99, 2), SelfTradeMode.EXPIRE_MAKER))

    events = d.apply(replace(1, 2, 102, 2))  # a new price that crosses its own ask: the ask is expired

    assert [type(e).__name__ for e in events] == [
        "OrderReplaced",
        "MatchPrevented",
        "OrderCanceled",
        "BookDelta",
        "BookDelta",
        "BookDelta",
    ]
    assert d.levels(BUY) == [(102, [(3, 2)])] and d.levels(SELL) == []


def test_last_price_is_the_last_fill_not_the_level_where_self_trade_prevention_stopped(d: Driver) -> None:
    # account 1's own sell at 101 stops its buy after the fill at 100: the band must then be centred on 100 (the
    # last trade), not on 101, where matching stopped
    d.run(limit(2, SELL, 100, 1), limit(1, SELL, 101, 1), limit(1, BUY, 105, 2))
    assert d.engine.matchers[SYM].last_price == 100
    (event,) = d.apply(limit(3, BUY, 111, 1))  # 100 + 10 % = 110: 111 is outside the band
    assert event == d.stamp([rejected(3, RejectReason.PRICE_OUT_OF_BAND, "price=111 band=[90,110] last=100")])[0]
