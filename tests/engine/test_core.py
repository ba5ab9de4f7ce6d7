"""The Engine entry point: bad input refused with exact reasons and no state change, sequencing of in_seq /
out_seq / update ids, and the event envelope."""

from __future__ import annotations

import pytest

from engine.core import Engine, SequenceError
from tests.stubs import (
    BTC,
    BUY,
    ETH,
    FOK,
    GTC,
    IOC,
    LIMIT,
    LIMIT_MAKER,
    MARKET,
    SELL,
    SPECS,
    SYM,
    SYM2,
    TS,
    Driver,
    accepted,
    cancel,
    cancel_all,
    cancel_rejected,
    canceled,
    delta,
    limit,
    make_spec,
    market,
    place,
    post_only,
    rejected,
    replace,
    state_without_seqs,
    take_snapshot,
    trade,
)
from wire.codec import encode
from wire.commands import Command, TakeSnapshot
from wire.enums import CancelReason, OrderType
from wire.events import BookDelta, Event
from wire.reasons import RejectReason

R = RejectReason
IOC_REMAINDER = CancelReason.IOC_REMAINDER


def seeded() -> Driver:
    """Last trade at 100 (band [90, 110]); account 1 has order 3 (SELL 105 x5 "a") and order 5 (SELL 106 x1 "c"),
    account 2 has order 4 (BUY 95 x5 "b")."""
    d = Driver()
    d.run(
        limit(1, SELL, 100, 1),
        limit(2, BUY, 100, 1),
        limit(1, SELL, 105, 5, client_oid="a"),
        limit(2, BUY, 95, 5, client_oid="b"),
        limit(1, SELL, 106, 1, client_oid="c"),
    )
    assert d.engine.matchers[SYM].last_price == 100
    return d


def assert_refused_without_change(d: Driver, cmd: Command, expected: Event) -> None:
    before = state_without_seqs(d.engine)
    out_seq = d.engine.out_seq

    events = d.apply(cmd)

    assert events == d.stamp([expected])
    assert d.engine.out_seq == out_seq + 1
    assert state_without_seqs(d.engine) == before


# ---- unknown symbol, every command kind ------------------------------------------------------------------------

UNKNOWN = "XXX"
UNKNOWN_DETAIL = "symbol='XXX'"


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        (
            limit(1, BUY, 100, 1, client_oid="a", symbol=UNKNOWN),
            rejected(1, R.UNKNOWN_SYMBOL, UNKNOWN_DETAIL, client_oid="a", symbol=UNKNOWN),
        ),
        (
            market(1, BUY, 1, symbol=UNKNOWN),
            rejected(1, R.UNKNOWN_SYMBOL, UNKNOWN_DETAIL, symbol=UNKNOWN),
        ),
        (
            cancel(1, 3, client_oid="a", symbol=UNKNOWN),
            cancel_rejected(1, R.UNKNOWN_SYMBOL, UNKNOWN_DETAIL, order_id=3, client_oid="a", symbol=UNKNOWN),
        ),
        (
            replace(1, 3, 101, 1, client_oid="a", new_client_oid="z", symbol=UNKNOWN),
            cancel_rejected(1, R.UNKNOWN_SYMBOL, UNKNOWN_DETAIL, order_id=3, client_oid="a", symbol=UNKNOWN),
        ),
        (
            cancel_all(1, symbol=UNKNOWN),
            cancel_rejected(1, R.UNKNOWN_SYMBOL, UNKNOWN_DETAIL, symbol=UNKNOWN),
        ),
    ],
    ids=["limit", "market", "cancel", "replace", "cancel-all"],
)
def test_command_when_symbol_is_unknown_rejects_unknown_symbol(cmd: Command, expected: Event) -> None:
    assert_refused_without_change(seeded(), cmd, expected)


# ---- place: bad values ------------------------------------------------------------------------------------------

LONG_OID = "x" * 65


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        (limit(1, BUY, 100, 0), rejected(1, R.QTY_NOT_POSITIVE, "qty=0")),
        (limit(1, BUY, 100, -3), rejected(1, R.QTY_NOT_POSITIVE, "qty=-3")),
        (limit(1, BUY, 100, 1_001), rejected(1, R.QTY_ABOVE_MAX, "qty=1001 max_qty=1000")),
        (limit(1, BUY, 0, 1), rejected(1, R.PRICE_NOT_POSITIVE, "price=0")),
        (limit(1, BUY, -100, 1), rejected(1, R.PRICE_NOT_POSITIVE, "price=-100")),
        (limit(1, BUY, 10_001, 1), rejected(1, R.PRICE_TOO_HIGH, "price=10001 max_price=10000")),
        (limit(1, BUY, 111, 1), rejected(1, R.PRICE_OUT_OF_BAND, "price=111 band=[90,110] last=100")),
        (limit(1, SELL, 89, 1), rejected(1, R.PRICE_OUT_OF_BAND, "price=89 band=[90,110] last=100")),
        (post_only(2, SELL, 111, 1), rejected(2, R.PRICE_OUT_OF_BAND, "price=111 band=[90,110] last=100")),
        (
            limit(1, BUY, 100, 1, client_oid=LONG_OID),
            rejected(1, R.INVALID_FIELD, "client_oid longer than 64", client_oid=LONG_OID),
        ),
        (
            limit(1, BUY, 90, 1, client_oid="a"),
            rejected(1, R.DUPLICATE_CLIENT_ORDER_ID, "client_oid='a' is open", client_oid="a"),
        ),
        (post_only(2, SELL, 95, 1), rejected(2, R.POST_ONLY_WOULD_TAKE, "price=95")),
        (place(1, BUY, MARKET, GTC, 0, 1), rejected(1, R.INVALID_ORDER_TYPE, "type=MARKET tif=GTC")),
        (place(1, BUY, LIMIT_MAKER, IOC, 100, 1), rejected(1, R.INVALID_ORDER_TYPE, "type=LIMIT_MAKER tif=IOC")),
        (place(1, BUY, LIMIT_MAKER, FOK, 100, 1), rejected(1, R.INVALID_ORDER_TYPE, "type=LIMIT_MAKER tif=FOK")),
        (market(1, BUY, 0), rejected(1, R.QTY_NOT_POSITIVE, "qty=0")),
        (market(1, SELL, -1, tif=FOK), rejected(1, R.QTY_NOT_POSITIVE, "qty=-1")),
        (market(1, BUY, 1_001), rejected(1, R.QTY_ABOVE_MAX, "qty=1001 max_qty=1000")),
        (
            market(1, BUY, 1, client_oid=LONG_OID),
            rejected(1, R.INVALID_FIELD, "client_oid longer than 64", client_oid=LONG_OID),
        ),
        (
            market(1, BUY, 1, client_oid="c"),
            rejected(1, R.DUPLICATE_CLIENT_ORDER_ID, "client_oid='c' is open", client_oid="c"),
        ),
    ],
    ids=[
        "qty-zero",
        "qty-negative",
        "qty-above-max",
        "price-zero",
        "price-negative",
        "price-above-max-price",
        "price-above-band",
        "price-below-band",
        "post-only-above-band",
        "client-oid-too-long",
        "client-oid-duplicate",
        "post-only-would-take",
        "market-gtc",
        "post-only-ioc",
        "post-only-fok",
        "market-qty-zero",
        "market-qty-negative",
        "market-qty-above-max",
        "market-client-oid-too-long",
        "market-client-oid-duplicate",
    ],
)
def test_place_when_a_value_is_bad_rejects_with_its_reason_and_changes_nothing(cmd: Command, expected: Event) -> None:
    assert_refused_without_change(seeded(), cmd, expected)


def test_place_accepts_a_client_order_id_of_exactly_the_maximum_length(d: Driver) -> None:
    oid = "x" * 64

    events = d.apply(limit(1, BUY, 100, 1, client_oid=oid))

    assert events == d.stamp([accepted(1, 1, BUY, 100, 1, client_oid=oid), delta(1, BUY, 100, 1)])


@pytest.mark.parametrize("type", [LIMIT, MARKET])
def test_place_when_qty_is_below_min_rejects_qty_below_min(type: OrderType) -> None:
    d = Driver([make_spec(min_qty=10)])
    cmd = limit(1, BUY, 100, 9) if type is LIMIT else market(1, BUY, 9)

    assert_refused_without_change(d, cmd, rejected(1, R.QTY_BELOW_MIN, "qty=9 min_qty=10"))


def test_place_when_notional_is_below_min_rejects_notional_below_min() -> None:
    d = Driver([make_spec(min_notional=500)])

    assert_refused_without_change(
        d, limit(1, BUY, 100, 4), rejected(1, R.NOTIONAL_BELOW_MIN, "notional=400 min_notional=500")
    )
    # an order's id is its command's in_seq
    assert d.apply(limit(1, BUY, 100, 5)) == d.stamp([accepted(d.in_seq, 1, BUY, 100, 5), delta(1, BUY, 100, 5)])


def test_market_when_notional_at_last_price_is_below_min_rejects_notional_below_min() -> None:
    d = Driver([make_spec(min_notional=500)])
    d.run(limit(1, SELL, 100, 5), limit(2, BUY, 100, 5), limit(1, SELL, 100, 10))

    assert_refused_without_change(
        d, market(2, BUY, 4), rejected(2, R.NOTIONAL_BELOW_MIN, "notional=400 min_notional=500")
    )


def test_market_before_any_trade_is_not_checked_for_notional() -> None:
    # with no last price there is nothing to value a market order at: it is accepted
    d = Driver([make_spec(min_notional=500)])

    events = d.apply(market(1, BUY, 1))

    assert events == d.stamp([accepted(1, 1, BUY, 0, 1, type=MARKET, tif=IOC), canceled(1, 1, 1, IOC_REMAINDER)])


@pytest.mark.parametrize("price", [91, 111])
def test_place_accepts_prices_on_the_band_edges_when_last_price_is_not_a_multiple(price: int) -> None:
    # last 101, band 10 %: [ceil(90.9), floor(111.1)] = [91, 111]
    d = Driver()
    d.run(limit(1, SELL, 101, 1), limit(2, BUY, 101, 1))

    events = d.apply(limit(3, BUY, price, 1))

    assert events == d.stamp([accepted(3, 3, BUY, price, 1), delta(3, BUY, price, 1)])


@pytest.mark.parametrize("price", [90, 112])
def test_place_when_price_is_just_outside_the_rounded_band_rejects_price_out_of_band(price: int) -> None:
    d = Driver()
    d.run(limit(1, SELL, 101, 1), limit(2, BUY, 101, 1))

    detail = f"price={price} band=[91,111] last=101"
    assert_refused_without_change(d, limit(3, BUY, price, 1), rejected(3, R.PRICE_OUT_OF_BAND, detail))


def test_place_has_no_band_when_the_symbol_has_no_trade_yet() -> None:
    d = Driver()
    d.run(limit(1, SELL, 100, 1), limit(2, BUY, 100, 1, symbol=SYM2))  # no trade on BTC; ETH untouched

    events = d.apply(limit(3, BUY, 9_000, 1, symbol=SYM2))

    assert events == d.stamp([accepted(3, 3, BUY, 9_000, 1, symbol=SYM2), delta(2, BUY, 9_000, 1, symbol=SYM2)])


def test_place_has_no_band_when_the_symbol_band_is_zero() -> None:
    d = Driver([make_spec(band_bps=0)])
    d.run(limit(1, SELL, 100, 1), limit(2, BUY, 100, 1))

    events = d.apply(limit(3, BUY, 9_000, 1))

    assert events == d.stamp([accepted(3, 3, BUY, 9_000, 1), delta(3, BUY, 9_000, 1)])


# ---- cancel and replace: bad values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        (cancel(1, 99), cancel_rejected(1, R.UNKNOWN_ORDER, "order_id=99 client_oid=''", order_id=99)),
        (cancel(2, 3), cancel_rejected(2, R.UNKNOWN_ORDER, "order_id=3 client_oid=''", order_id=3)),
        (replace(1, 99, 105, 5), cancel_rejected(1, R.UNKNOWN_ORDER, "order_id=99 client_oid=''", order_id=99)),
        (replace(1, 3, 105, 0), cancel_rejected(1, R.QTY_NOT_POSITIVE, "qty=0", order_id=3)),
        (replace(1, 3, 105, 1_001), cancel_rejected(1, R.QTY_ABOVE_MAX, "qty=1001 max_qty=1000", order_id=3)),
        (replace(1, 3, 0, 5), cancel_rejected(1, R.PRICE_NOT_POSITIVE, "price=0", order_id=3)),
        (replace(1, 3, 10_001, 5), cancel_rejected(1, R.PRICE_TOO_HIGH, "price=10001 max_price=10000", order_id=3)),
        (
            replace(1, 3, 111, 5),
            cancel_rejected(1, R.PRICE_OUT_OF_BAND, "price=111 band=[90,110] last=100", order_id=3),
        ),
        (
            replace(1, 3, 105, 4, new_client_oid=LONG_OID),
            cancel_rejected(1, R.INVALID_FIELD, "client_oid longer than 64", order_id=3),
        ),
        (
            replace(1, 3, 105, 4, new_client_oid="c"),
            cancel_rejected(1, R.DUPLICATE_CLIENT_ORDER_ID, "client_oid='c' is open", order_id=3),
        ),
        (
            replace(1, 0, 105, 5, client_oid="a"),
            cancel_rejected(1, R.REPLACE_NO_CHANGE, "same price, quantity and client order id", client_oid="a"),
        ),
        (cancel_all(3), cancel_rejected(3, R.UNKNOWN_ORDER, "no open orders")),
    ],
    ids=[
        "cancel-unknown-id",
        "cancel-other-account",
        "replace-unknown-id",
        "replace-qty-zero",
        "replace-qty-above-max",
        "replace-price-zero",
        "replace-price-above-max-price",
        "replace-price-out-of-band",
        "replace-client-oid-too-long",
        "replace-client-oid-duplicate",
        "replace-no-change",
        "cancel-all-nothing-open",
    ],
)
def test_cancel_or_replace_when_a_value_is_bad_rejects_with_its_reason_and_changes_nothing(
    cmd: Command, expected: Event
) -> None:
    assert_refused_without_change(seeded(), cmd, expected)


def test_replace_when_new_price_makes_notional_below_min_rejects_notional_below_min() -> None:
    d = Driver([make_spec(min_notional=500)])
    d.apply(limit(1, BUY, 100, 5))

    detail = "notional=495 min_notional=500"
    assert_refused_without_change(d, replace(1, 1, 99, 5), cancel_rejected(1, R.NOTIONAL_BELOW_MIN, detail, order_id=1))


def test_replace_when_reducing_in_place_skips_price_and_notional_checks() -> None:
    # the order passed them on entry; like a partial fill, a reduction may leave it below the minimum notional,
    # and a band that moved since must not trap it (else it could only be canceled)
    d = Driver([make_spec(min_notional=500, band_bps=1000)])
    d.run(limit(1, BUY, 100, 5), limit(2, SELL, 120, 1), limit(3, BUY, 120, 1))  # last trade 120: 100 is out of band
    events = d.apply(replace(1, 1, 100, 4))
    assert [type(e).__name__ for e in events] == ["OrderReplaced", "BookDelta"]
    assert events[0].kept_priority is True  # type: ignore[union-attr]


# ---- book deltas and update ids ---------------------------------------------------------------------------------


def test_book_deltas_report_each_changed_level_once_with_its_final_total(d: Driver) -> None:
    d.run(limit(1, SELL, 100, 2), limit(2, SELL, 100, 3), limit(1, SELL, 101, 4), limit(2, SELL, 102, 5))

    events = d.apply(limit(3, BUY, 101, 8))

    # level 100 is emptied by two fills (one delta, total 0), level 101 partly (one delta, total 1), 102 untouched
    assert events == d.stamp(
        [
            accepted(5, 3, BUY, 101, 8),
            trade(1, 100, 2, BUY, maker=(1, 1, 0), taker=(5, 3, 6)),
            trade(2, 100, 3, BUY, maker=(2, 2, 0), taker=(5, 3, 3)),
            trade(3, 101, 3, BUY, maker=(3, 1, 1), taker=(5, 3, 0)),
            delta(5, SELL, 100, 0),
            delta(6, SELL, 101, 1),
        ]
    )
    assert d.depth(SELL) == [(101, 1), (102, 5)]


def update_ids(events: list[Event]) -> list[tuple[str, int]]:
    return [(ev.symbol, ev.update_id) for ev in events if isinstance(ev, BookDelta)]


def test_update_id_is_per_symbol_and_gap_free_when_symbols_interleave(d: Driver) -> None:
    events = d.run(
        limit(1, SELL, 100, 1),  # BTC 1
        limit(1, SELL, 100, 1, symbol=SYM2),  # ETH 1
        limit(1, SELL, 101, 1, symbol=SYM2),  # ETH 2
        cancel(1, 1),  # BTC 2
        limit(1, BUY, 0, 1),  # rejected: no update id
        limit(2, BUY, 101, 2, symbol=SYM2),  # ETH 3 (level 100), 4 (level 101)
        limit(2, BUY, 90, 1),  # BTC 3
    )

    assert update_ids(events) == [
        (SYM, 1),
        (SYM2, 1),
        (SYM2, 2),
        (SYM, 2),
        (SYM2, 3),
        (SYM2, 4),
        (SYM, 3),
    ]


@pytest.mark.parametrize(
    "cmd",
    [
        limit(1, BUY, 0, 1),  # rejected
        limit(2, BUY, 99, 1, tif=IOC),  # accepted, nothing to match, canceled
        limit(2, BUY, 100, 9, tif=FOK),  # not fillable
        limit(1, BUY, 100, 1),  # self-trade at the touch
        cancel(2, 1),  # cancel rejected
        replace(1, 1, 100, 5),  # replace rejected
        take_snapshot(),
    ],
    ids=[
        "rejected",
        "ioc-no-cross",
        "fok-not-fillable",
        "self-trade",
        "cancel-rejected",
        "replace-rejected",
        "snapshot",
    ],
)
def test_update_id_is_not_used_when_a_command_changes_no_level(d: Driver, cmd: Command) -> None:
    d.apply(limit(1, SELL, 100, 5))  # BTC update 1

    events = d.apply(cmd)
    follow = d.apply(limit(3, SELL, 102, 1))

    assert update_ids(events) == []
    assert update_ids(follow) == [(SYM, 2)]


def test_events_carry_their_command_in_seq_and_ts_and_gap_free_out_seq() -> None:
    engine = Engine([BTC, ETH], risk=False)
    cmds: list[Command] = [
        limit(1, SELL, 100, 2),
        limit(1, BUY, 0, 1),
        take_snapshot(),
        limit(2, SELL, 100, 3, symbol=SYM2),
        limit(3, BUY, 101, 4),
        cancel(2, 99),
        market(3, BUY, 1, symbol=SYM2),
    ]
    stamps = [TS + 1_000 * i + 7 for i in range(len(cmds))]
    envelopes: list[tuple[int, int, int]] = []

    for in_seq, (cmd, ts) in enumerate(zip(cmds, stamps, strict=True), start=1):
        envelopes += [(ev.out_seq, ev.in_seq, ev.ts) for ev in engine.apply(in_seq, ts, cmd)]

    # 2 + 1 + 0 + 2 + 4 (accepted, trade, two deltas) + 1 + 3 events
    causes = [1, 1, 2, 4, 4, 5, 5, 5, 5, 6, 7, 7, 7]
    assert envelopes == [(out_seq, s, stamps[s - 1]) for out_seq, s in enumerate(causes, start=1)]
    assert (engine.in_seq, engine.out_seq) == (7, 13)


# ---- sequencing -------------------------------------------------------------------------------------------------


def test_engine_starts_at_in_seq_and_out_seq_zero() -> None:
    engine = Engine([BTC], risk=False)

    assert (engine.in_seq, engine.out_seq) == (0, 0)


@pytest.mark.parametrize("in_seq", [0, 1, 3], ids=["repeat-previous", "repeat-last", "skip"])
def test_apply_when_in_seq_is_not_the_next_raises_sequence_error_and_changes_nothing(in_seq: int) -> None:
    d = Driver()
    d.run(limit(1, SELL, 100, 1))  # in_seq 1
    before = d.engine.snapshot()

    with pytest.raises(SequenceError, match=rf"command {in_seq} applied after 1"):
        d.engine.apply(in_seq, TS, limit(1, SELL, 101, 1))

    assert d.engine.snapshot() == before


def test_take_snapshot_emits_nothing_and_advances_in_seq(d: Driver) -> None:
    d.apply(limit(1, SELL, 100, 1))
    before = state_without_seqs(d.engine)

    events = d.apply(take_snapshot())

    assert events == []
    assert (d.engine.in_seq, d.engine.out_seq) == (2, 2)
    assert state_without_seqs(d.engine) == before


def test_apply_many_when_given_a_batch_equals_applying_each_command() -> None:
    cmds: list[Command] = [limit(1, SELL, 100, 5), limit(2, BUY, 100, 2), TakeSnapshot("t", 1), cancel(1, 1)]
    stamps = [10, 11, 12, 13]
    one_by_one = Engine(SPECS, risk=False)
    expected = [ev for i, cmd in enumerate(cmds) for ev in one_by_one.apply(1 + i, stamps[i], cmd)]
    batched = Engine(SPECS, risk=False)
    head = batched.apply_many(1, stamps, cmds[:2])
    requested = [batched.snapshot_requested]
    tail = batched.apply_many(1, stamps, cmds, start=2)  # the first two already applied: skipped
    requested.append(batched.snapshot_requested)
    assert [encode(e) for e in head + tail] == [encode(e) for e in expected]
    assert requested == [False, True] and batched.state_hash() == one_by_one.state_hash()
    with pytest.raises(SequenceError):
        batched.apply_many(1, stamps, cmds, start=1)
