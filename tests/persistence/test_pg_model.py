"""The PostgreSQL read model, without a database: random money streams through the engine, their events folded
by PostgresModel, and what the rows say compared with the engine's own state after every batch."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import msgspec
from hypothesis import given

from engine.accounts import FEE_ACCOUNT
from engine.core import Engine
from persistence.pg_model import EXTERNAL, OPEN_STATUSES, SUSPENSE, OrderRow, PostgresModel, Rows
from tests.engine.test_properties import ENGINE_PROFILE, SHRINK_TIMEOUT, stamp_of
from tests.engine.test_risk_properties import ASSETS, RISK_SPECS, money_streams
from tests.stubs import BUY, GTC, LIMIT, SELL, place
from wire.commands import CancelOrder, Command, CreateAccount, Deposit, ReplaceOrder, Withdraw
from wire.enums import BalanceCause, SelfTradeMode, Side
from wire.events import BalanceChanged, Event, TradeExecuted


class Tables:
    """The rows as the database would hold them after each batch's upserts and appends."""

    def __init__(self) -> None:
        self.orders: dict[int, OrderRow] = {}
        self.ledger: list[tuple[Any, ...]] = []
        self.ledger_keys: set[tuple[int, int]] = set()
        self.trades: dict[tuple[str, int], tuple[Any, ...]] = {}
        self.balances: dict[tuple[int, str], tuple[int, int]] = {}
        self.updates: dict[tuple[int, int], tuple[Any, ...]] = {}
        self.prevented: dict[tuple[str, int], tuple[Any, ...]] = {}

    def add(self, rows: Rows) -> None:
        for record in rows.order_inserts:
            assert record[0] not in self.orders, f"order {record[0]} inserted twice"
            self.orders[record[0]] = OrderRow(*record)
        for record in rows.order_changes:
            assert record[0] in self.orders, f"order {record[0]} updated before it was inserted"
            self.orders[record[0]] = OrderRow(*record)
        for line in rows.ledger:
            key = (line[0], line[1])
            assert key not in self.ledger_keys, f"ledger line {key} written twice"
            self.ledger_keys.add(key)
            self.ledger.append(line)
        for trade in rows.trades:
            assert (trade[0], trade[1]) not in self.trades
            self.trades[(trade[0], trade[1])] = trade
        for match in rows.prevented:
            assert (match[0], match[1]) not in self.prevented, f"prevented match {match[:2]} written twice"
            self.prevented[(match[0], match[1])] = match
        for update in rows.order_updates:
            assert (update[0], update[1]) not in self.updates
            self.updates[(update[0], update[1])] = update
        for account, asset, free, locked, _ in rows.balances.values():
            self.balances[(account, asset)] = (free, locked)

    def sums(self) -> dict[tuple[int, str, str], int]:
        total: defaultdict[tuple[int, str, str], int] = defaultdict(int)
        for t in self.ledger:  # a transfer: (..., kind, asset, amount, debit, debit bucket, credit, credit bucket, ...)
            assert t[6] > 0
            total[(t[9], t[5], t[10])] += t[6]
            total[(t[7], t[5], t[8])] -= t[6]
        return {k: v for k, v in total.items() if v}


def check(engine: Engine, tables: Tables) -> None:
    held = {
        (account, asset): (b.free, b.locked)
        for account, by_asset in engine.accounts.balances.items()
        for asset, b in by_asset.items()
        if b.free or b.locked
    }
    assert {k: v for k, v in tables.balances.items() if v != (0, 0)} == held
    sums = tables.sums()
    for (account, asset), (free, locked) in held.items():
        assert sums.get((account, asset, "free"), 0) == free, (account, asset)
        assert sums.get((account, asset, "locked"), 0) == locked, (account, asset)
    assert not [k for k in sums if k[0] == SUSPENSE]
    assert not [k for k in sums if k[0] >= 0 and k[:2] not in held], "ledger balances of accounts that hold nothing"
    engine_open = {
        o.order_id: (o.account, o.side.name, o.price, o.leaves, o.client_oid)
        for book in (m.book for m in engine.matchers.values())
        for o in book.orders.values()
    }
    db_open = {
        row.order_id: (row.account, row.side, row.price, row.leaves, row.client_oid)
        for row in tables.orders.values()
        if row.status in OPEN_STATUSES
    }
    assert db_open == engine_open
    expired: defaultdict[int, int] = defaultdict(int)  # order -> what the prevented matches say was expired of it
    for m in tables.prevented.values():  # (symbol, id, account, taker, maker, price, mode, taker qty, maker qty, ...)
        expired[m[3]] += m[7]
        expired[m[4]] += m[8]
    for row in tables.orders.values():
        assert row.orig_qty >= row.executed_qty + row.leaves
        assert (row.status == "FILLED") == (row.executed_qty == row.orig_qty and row.leaves == 0)
        # an order self-trade prevention expired lost all it had left, and only such an order lost anything
        assert row.prevented_qty == expired.get(row.order_id, 0)
        assert (row.status == "EXPIRED_IN_MATCH") == (row.prevented_qty > 0) == (row.prevented_match_id is not None)
        if row.prevented_qty:
            assert row.prevented_qty == row.orig_qty - row.executed_qty


def run(cmds: list[Command], batch: int = 7) -> tuple[Engine, Tables, list[Event]]:
    """Apply ``cmds``; fold the events in batches of ``batch`` commands (each batch like one stream entry), with
    a new model loaded from the tables every third batch (as a restarted persister does)."""
    engine = Engine(RISK_SPECS, ASSETS)
    tables = Tables()
    model = PostgresModel({s.symbol: s for s in RISK_SPECS})
    everything: list[Event] = []
    for start in range(0, len(cmds), batch):
        events: list[Event] = []
        for in_seq, cmd in enumerate(cmds[start : start + batch], start=start + 1):
            events += engine.apply(in_seq, stamp_of(in_seq), cmd)
        everything += events
        model.apply(events)
        rows = model.take_rows()
        assert not rows.quarantined, rows.quarantined
        tables.add(rows)
        check(engine, tables)
        if start // batch % 3 == 2:
            model = PostgresModel(
                {s.symbol: s for s in RISK_SPECS},
                (OrderRow(*o.record()) for o in tables.orders.values() if o.status in OPEN_STATUSES),
                ((a, s, f, lk) for (a, s), (f, lk) in tables.balances.items()),
            )
    return engine, tables, everything


@SHRINK_TIMEOUT
@ENGINE_PROFILE
@given(money_streams())
def test_rows_match_the_engine_and_the_ledger_balances_when_streams_are_random(cmds: list[Command]) -> None:
    _, tables, events = run(cmds)
    trades = [ev for ev in events if isinstance(ev, TradeExecuted)]
    assert sorted(tables.trades) == sorted((t.symbol, t.trade_id) for t in trades)
    for t in trades:  # every fill is in both orders' executed quantity
        assert tables.updates[(t.out_seq, t.maker_order_id)][8] <= tables.orders[t.maker_order_id].executed_qty
    executed: defaultdict[int, int] = defaultdict(int)
    for t in trades:
        executed[t.maker_order_id] += t.qty
        executed[t.taker_order_id] += t.qty
    assert {k: v for k, v in executed.items()} == {
        o.order_id: o.executed_qty for o in tables.orders.values() if o.executed_qty
    }


def _money(*more: Command) -> list[Command]:
    setup: list[Command] = [CreateAccount("t", 0, 1), CreateAccount("t", 0, 2)]
    setup += [Deposit("t", 0, a, asset.name, 100_000) for a in (1, 2) for asset in ASSETS]
    return setup + list(more)


def _in_seq_after_money(n: int) -> int:
    """The in_seq of the n-th command after _money's set-up (run applies from in_seq 1): the id of the order it
    creates, if it creates one."""
    return len(_money()) + n


def test_a_trade_books_its_legs_and_fees_and_a_cancel_its_release() -> None:
    symbol = RISK_SPECS[0].symbol
    spec = RISK_SPECS[0]
    cmds = _money(
        place(1, SELL, LIMIT, GTC, 100, 5, symbol=symbol),
        place(2, BUY, LIMIT, GTC, 101, 3, symbol=symbol),  # fills 3 at 100, a tick better than its limit
        CancelOrder("t", 0, 1, symbol, _in_seq_after_money(1), ""),
        Withdraw("t", 0, FEE_ACCOUNT, spec.quote, 1),
    )
    _, tables, events = run(cmds, batch=100)
    trade = next(ev for ev in events if isinstance(ev, TradeExecuted))
    assert trade.taker_side is Side.BUY and trade.qty == 3
    # (kind, asset, amount, from account, from bucket, to account, to bucket)
    transfers = [t[4:11] for t in tables.ledger if t[0] == trade.out_seq]
    quote, base = 100 * 3 * spec.quote_per_tick_lot, 3 * spec.base_per_lot
    assert transfers == [
        ("TRADE", spec.quote, quote, 2, "locked", 1, "free"),
        ("TRADE", spec.base, base, 1, "locked", 2, "free"),
        ("FEE", spec.quote, trade.maker_fee, 1, "free", FEE_ACCOUNT, "free"),
        ("FEE", spec.base, trade.taker_fee, 2, "free", FEE_ACCOUNT, "free"),
    ]
    # the buyer's command locked 303 units, spent 300 and got 3 back: one command's balance events give its net
    # effect, so the ledger books the net lock
    assert [t[4:11] for t in tables.ledger if t[4] == "LOCK" and t[7] == 2] == [
        ("LOCK", spec.quote, quote, 2, "free", 2, "locked")
    ]
    assert [t[4:11] for t in tables.ledger if t[4] == "RELEASE"] == [
        ("RELEASE", spec.base, 2 * spec.base_per_lot, 1, "locked", 1, "free")
    ]
    assert {t[4] for t in tables.ledger} == {"DEPOSIT", "LOCK", "RELEASE", "TRADE", "FEE", "WITHDRAWAL"}
    assert tables.sums()[(EXTERNAL, spec.quote, "external")] == -2 * 100_000 + 1
    sell, buy = tables.orders[_in_seq_after_money(1)], tables.orders[_in_seq_after_money(2)]
    assert buy.status == "FILLED"
    assert (sell.status, sell.executed_qty, sell.leaves) == ("CANCELED", 3, 0)


def test_a_replace_that_loses_priority_ends_the_old_order_and_starts_a_new_one() -> None:
    symbol = RISK_SPECS[0].symbol
    first, second = _in_seq_after_money(1), _in_seq_after_money(2)  # the ids: placed, then re-entered by a replace
    cmds = _money(
        place(1, BUY, LIMIT, GTC, 100, 5, symbol=symbol, client_oid="a"),
        ReplaceOrder("t", 0, 1, symbol, first, "", "b", 99, 5),  # a new price: a new order id
        ReplaceOrder("t", 0, 1, symbol, second, "", "", 99, 2),  # a smaller quantity: amended in place
    )
    _, tables, _ = run(cmds, batch=100)
    old, new = tables.orders[first], tables.orders[second]
    assert (old.status, old.cancel_reason, old.replaced_by, old.leaves) == ("CANCELED", "REPLACED", second, 0)
    assert (new.replaces, new.client_oid, new.price, new.orig_qty, new.leaves, new.status) == (
        first, "b", 99, 2, 2, "NEW")  # fmt: skip
    kinds = [u[5] for u in sorted(tables.updates.values())]
    assert kinds == ["NEW", "REPLACED", "NEW", "AMENDED"]


def test_a_self_trade_stop_is_recorded_on_both_orders_and_as_a_prevented_match() -> None:
    symbol = RISK_SPECS[0].symbol
    first, second, taker = _in_seq_after_money(1), _in_seq_after_money(2), _in_seq_after_money(3)
    cmds = _money(
        place(1, SELL, LIMIT, GTC, 100, 2, symbol=symbol),
        place(1, SELL, LIMIT, GTC, 101, 3, symbol=symbol),
        msgspec.structs.replace(place(1, BUY, LIMIT, GTC, 101, 9, symbol=symbol), stp=SelfTradeMode.EXPIRE_MAKER),
        msgspec.structs.replace(place(1, SELL, LIMIT, GTC, 101, 4, symbol=symbol), stp=SelfTradeMode.EXPIRE_BOTH),
    )
    _, tables, _ = run(cmds, batch=100)
    stops = [(m[1], m[3], m[4], m[5], m[6], m[7], m[8]) for m in sorted(tables.prevented.values())]
    last = _in_seq_after_money(4)
    assert stops == [
        (1, taker, first, 100, "EXPIRE_MAKER", 0, 2),
        (2, taker, second, 101, "EXPIRE_MAKER", 0, 3),
        (3, last, taker, 101, "EXPIRE_BOTH", 4, 9),
    ]
    got = {o: (tables.orders[o].status, tables.orders[o].prevented_qty, tables.orders[o].prevented_match_id)
           for o in (first, second, taker, last)}  # fmt: skip
    assert got == {first: ("EXPIRED_IN_MATCH", 2, 1), second: ("EXPIRED_IN_MATCH", 3, 2),
                   taker: ("EXPIRED_IN_MATCH", 9, 3), last: ("EXPIRED_IN_MATCH", 4, 3)}  # fmt: skip


def test_an_event_for_an_order_that_is_not_open_is_quarantined_and_the_rest_applied() -> None:
    model = PostgresModel({s.symbol: s for s in RISK_SPECS})
    stray = BalanceChanged(1, 1, 5, 7, "USD", 10, 0, BalanceCause.DEPOSIT)
    bad = TradeExecuted(2, 2, 6, RISK_SPECS[0].symbol, 1, 100, 1, BUY, 41, 1, 0, 42, 2, 0)
    model.apply([stray, bad], "9-0")
    rows = model.take_rows()
    assert [q.reason for q in rows.quarantined] == ["trade 1: order 41 is not open"]
    assert rows.quarantined[0].out_seq == 2 and rows.quarantined[0].stream_id == "9-0"
    assert rows.balances == {(7, "USD"): (7, "USD", 10, 0, 1)}  # the deposit applied
    assert [t[4:11] for t in rows.ledger] == [("DEPOSIT", "USD", 10, EXTERNAL, "external", 7, "free")]
