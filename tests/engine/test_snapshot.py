"""Engine.snapshot / Engine.restore: a restored engine is the same engine (same bytes, same hash, same future)."""

from __future__ import annotations

import msgspec
import pytest

from engine.core import Engine
from engine.snapshot import FORMAT_VERSION, decode_state, encode_state
from tests.stubs import (
    BTC,
    BUY,
    ETH,
    SELL,
    SPECS,
    SYM,
    SYM2,
    Driver,
    accepted,
    cancel,
    cancel_all,
    delta,
    limit,
    make_spec,
    market,
    post_only,
    replace,
)
from wire.commands import Command
from wire.errors import MercuryError
from wire.events import CancelRejected, OrderRejected, TradeExecuted
from wire.reasons import RejectReason as R

# the number after each command is its in_seq, which is also the id of the order it creates
HISTORY: list[Command] = [
    limit(1, SELL, 100, 5, client_oid="a"),  # 1
    limit(2, SELL, 100, 3),  # 2
    limit(3, SELL, 101, 4, client_oid="c"),  # 3
    post_only(1, SELL, 103, 2, client_oid="pm"),  # 4, LIMIT_MAKER
    limit(2, BUY, 100, 2),  # 5: fills 2 of order 1, last BTC price 100
    limit(3, BUY, 98, 6, client_oid="b"),  # 6
    limit(1, BUY, 97, 1),  # 7
    replace(2, 2, 100, 1),  # 8: order 2 keeps its place with 1 open
    limit(1, SELL, 102, 2, symbol=SYM2),  # 9
    limit(2, BUY, 102, 1, symbol=SYM2),  # 10: last ETH price 102
    replace(3, 3, 102, 4),  # 11: order 3 becomes 11 at 102
]

TAIL: list[Command] = [
    limit(4, BUY, 101, 5),  # FIFO at 100 (order 1 before 2), then rests
    cancel(3, client_oid="b"),  # the client order id index
    limit(1, BUY, 111, 1),  # the band around the restored last price
    limit(1, SELL, 104, 1, client_oid="pm"),  # duplicate client order id
    replace(1, 4, 101, 2),  # post-only (the type survived) would take
    replace(1, 4, 102, 1),  # a new order id: this command's in_seq, after the snapshot's
    cancel_all(1),  # the account index
    market(2, BUY, 10, symbol=SYM2),
    limit(4, SELL, 99, 9),
]


def run(driver: Driver, cmds: list[Command]) -> list[bytes]:
    return [msgspec.msgpack.encode(driver.apply(cmd)) for cmd in cmds]


def test_restore_gives_the_same_snapshot_bytes_hash_and_books() -> None:
    original = Driver()
    run(original, HISTORY)

    restored = Engine.restore(SPECS, original.engine.snapshot())

    restored.check_invariants()
    assert restored.snapshot() == original.engine.snapshot()
    assert restored.state_hash() == original.engine.state_hash()
    assert (restored.in_seq, restored.out_seq) == (original.engine.in_seq, original.engine.out_seq)
    for symbol in (SYM, SYM2):
        for side in (BUY, SELL):
            assert Driver(engine=restored).levels(side, symbol) == original.levels(side, symbol)


def test_restore_then_the_same_commands_give_the_same_events_as_the_uninterrupted_engine() -> None:
    uninterrupted = Driver()
    run(uninterrupted, HISTORY)
    snapshot = uninterrupted.engine.snapshot()
    expected = run(uninterrupted, TAIL)

    resumed = Driver(engine=Engine.restore(SPECS, snapshot))
    events = run(resumed, TAIL)

    assert events == expected
    assert resumed.engine.state_hash() == uninterrupted.engine.state_hash()


def test_tail_depends_on_the_restored_state() -> None:
    # guards the test above: the tail's outcome hangs on the band, the indexes and the order types of the history
    d = Driver()
    run(d, HISTORY)

    events = [ev for cmd in TAIL for ev in d.apply(cmd)]

    reasons = {ev.reason for ev in events if isinstance(ev, OrderRejected | CancelRejected)}
    assert reasons == {R.PRICE_OUT_OF_BAND, R.DUPLICATE_CLIENT_ORDER_ID, R.POST_ONLY_WOULD_TAKE}
    assert [(ev.maker_order_id, ev.qty) for ev in events if isinstance(ev, TradeExecuted)][:2] == [(1, 3), (2, 1)]


def test_snapshot_lists_each_symbols_orders_in_ascending_order_id() -> None:
    d = Driver()
    run(d, HISTORY)

    state = decode_state(d.engine.snapshot())

    assert state.version == FORMAT_VERSION
    assert (state.in_seq, state.out_seq) == (len(HISTORY), d.engine.out_seq)
    by_symbol = {s.symbol: s for s in state.symbols}
    assert [s.symbol for s in state.symbols] == sorted(by_symbol)
    btc = by_symbol[SYM]
    assert [(o.order_id, o.leaves) for o in btc.orders] == [(1, 3), (2, 1), (4, 2), (6, 6), (7, 1), (11, 4)]
    assert (btc.trade_id, btc.last_price) == (1, 100)
    assert (by_symbol[SYM2].trade_id, by_symbol[SYM2].last_price) == (1, 102)


def test_state_hash_is_equal_for_equal_histories_and_differs_after_any_change() -> None:
    a, b = Driver(), Driver()
    run(a, HISTORY)
    run(b, HISTORY)
    assert a.engine.state_hash() == b.engine.state_hash()

    b.apply(limit(9, BUY, 99, 1))

    assert a.engine.state_hash() != b.engine.state_hash()


def test_restore_of_a_fresh_engine_is_a_fresh_engine() -> None:
    restored = Engine.restore(SPECS, Engine(SPECS, risk=False).snapshot())

    assert restored.state_hash() == Engine(SPECS, risk=False).state_hash()
    assert (restored.in_seq, restored.out_seq) == (0, 0)


def test_restore_when_format_version_differs_raises_mercury_error() -> None:
    state = decode_state(Engine(SPECS, risk=False).snapshot())
    data = encode_state(msgspec.structs.replace(state, version=FORMAT_VERSION + 1))

    with pytest.raises(MercuryError, match="snapshot format"):
        Engine.restore(SPECS, data)


def test_restore_of_a_format_3_snapshot_is_refused_before_its_fields_are_decoded() -> None:
    # format 3 stored next_order_id after out_seq: its fields no longer decode as today's, so the version is read
    # first and the refusal says what it is
    state = decode_state(Engine(SPECS, risk=False).snapshot())
    v3 = msgspec.msgpack.encode([3, state.in_seq, state.out_seq, 1, *msgspec.to_builtins(state)[3:]])

    with pytest.raises(MercuryError, match=r"snapshot format 3, this engine reads \(5,\)"):
        Engine.restore(SPECS, v3)


def test_restore_of_a_format_4_snapshot_is_refused() -> None:
    # format 4 had no prevented_id per symbol (and its engine emitted no MatchPrevented), so its journal's self-trade
    # stops would replay with more events than its events stream holds
    d = Driver()
    run(d, HISTORY)
    state = msgspec.to_builtins(decode_state(d.engine.snapshot()))
    v4 = msgspec.msgpack.encode([4, *state[1:3], [s[:-1] for s in state[3]], *state[4:]])

    with pytest.raises(MercuryError, match=r"snapshot format 4, this engine reads \(5,\)"):
        Engine.restore(SPECS, v4)


def test_restore_when_an_unlisted_symbol_holds_orders_raises_mercury_error() -> None:
    d = Driver()
    d.apply(limit(1, SELL, 100, 1, symbol=SYM2))

    with pytest.raises(MercuryError, match="ETH that the venue no longer lists"):
        Engine.restore([BTC], d.engine.snapshot())


def test_restore_skips_an_unlisted_symbol_without_orders_or_trades() -> None:
    d = Driver()
    d.run(limit(1, SELL, 100, 1, symbol=SYM2), cancel(1, 1, symbol=SYM2), limit(1, SELL, 100, 1))

    restored = Engine.restore([BTC], d.engine.snapshot())

    assert set(restored.matchers) == {SYM}
    assert Driver(engine=restored).levels(SELL) == [(100, [(3, 1)])]  # the id is its command's in_seq


def test_restore_when_the_venue_adds_a_symbol_starts_that_symbol_empty() -> None:
    d = Driver([BTC])
    d.apply(limit(1, SELL, 100, 1))
    sol = make_spec("SOL")

    resumed = Driver(engine=Engine.restore([BTC, ETH, sol], d.engine.snapshot()))
    events = resumed.apply(limit(2, BUY, 100, 1, symbol="SOL"))

    assert events == resumed.stamp([accepted(2, 2, BUY, 100, 1, symbol="SOL"), delta(1, BUY, 100, 1, symbol="SOL")])
    assert resumed.levels(SELL) == [(100, [(1, 1)])]
