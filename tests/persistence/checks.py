"""What a persisted database must hold, compared with a replay of the journal (the engine's state and events)."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict

import asyncpg

from engine.core import Engine
from persistence.pg_model import OPEN_STATUSES, SUSPENSE
from tests.harness import Venue
from wire import keys
from wire.events import (
    AccountCreated,
    CancelRejected,
    Event,
    FundingRejected,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderReplaced,
    TradeExecuted,
)


def fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def offset(url: str, consumer: str = "postgres") -> int:
    try:
        rows = fetch(url, "SELECT out_seq FROM consumer_offsets WHERE consumer = $1", consumer)
    except asyncpg.UndefinedTableError:
        return 0
    return rows[0]["out_seq"] if rows else 0


def expected_history_rows(events: list[Event]) -> int:
    """order_updates rows the events make: one per order event, two per trade, two per replace that re-enters."""
    n = 0
    for ev in events:
        if isinstance(ev, OrderAccepted | OrderCanceled):
            n += 1
        elif isinstance(ev, TradeExecuted):
            n += 2
        elif isinstance(ev, OrderReplaced):
            n += 1 if ev.kept_priority else 2
    return n


def assert_database_matches(url: str, engine: Engine, events: list[Event]) -> None:
    """Trades, orders (open ones against the engine's books), balances and the ledger's sums against the engine;
    history and refusals against the events; nothing in suspense or quarantine."""
    trades = {(t.symbol, t.trade_id): t for t in events if isinstance(t, TradeExecuted)}
    db_trades = fetch(url, "SELECT * FROM trades")
    assert len(db_trades) == len(trades)
    for row in db_trades:
        t = trades[(row["symbol"], row["trade_id"])]
        assert (row["price"], row["qty"], row["maker_order_id"], row["taker_order_id"], row["maker_fee"],
                row["taker_fee"], row["out_seq"]) == (t.price, t.qty, t.maker_order_id, t.taker_order_id,
                                                      t.maker_fee, t.taker_fee, t.out_seq)  # fmt: skip

    order_ids = {ev.order_id for ev in events if isinstance(ev, OrderAccepted)}
    order_ids |= {ev.new_order_id for ev in events if isinstance(ev, OrderReplaced)}
    orders = {row["order_id"]: row for row in fetch(url, "SELECT * FROM orders")}
    assert set(orders) == order_ids
    stp = {ev.order_id: ev.stp.name for ev in events if isinstance(ev, OrderAccepted)}
    for ev in events:
        if isinstance(ev, OrderReplaced) and ev.new_order_id != ev.order_id:  # the new order keeps the mode
            stp[ev.new_order_id] = stp[ev.order_id]
    assert {i: r["stp"] for i, r in orders.items()} == stp
    executed: defaultdict[int, int] = defaultdict(int)
    for t in trades.values():
        executed[t.maker_order_id] += t.qty
        executed[t.taker_order_id] += t.qty
    engine_open = {
        o.order_id: (o.account, o.side.name, o.price, o.leaves, o.client_oid)
        for m in engine.matchers.values()
        for o in m.book.orders.values()
    }
    db_open = {
        i: (r["account"], r["side"], r["price"], r["leaves"], r["client_oid"])
        for i, r in orders.items()
        if r["status"] in OPEN_STATUSES
    }
    assert db_open == engine_open
    for order_id, row in orders.items():
        assert row["executed_qty"] == executed.get(order_id, 0), order_id
        filled = row["executed_qty"] == row["orig_qty"]
        assert (row["status"] == "FILLED") == filled, dict(row)

    held = {
        (account, asset): (b.free, b.locked)
        for account, by_asset in engine.accounts.balances.items()
        for asset, b in by_asset.items()
        if b.free or b.locked
    }
    balances = {(r["account"], r["asset"]): (r["free"], r["locked"]) for r in fetch(url, "SELECT * FROM balances")}
    assert {k: v for k, v in balances.items() if v != (0, 0)} == held
    sums = {
        (r["account"], r["asset"], r["bucket"]): int(r["total"])
        for r in fetch(url, "SELECT account, asset, bucket, sum(amount) AS total FROM ledger_lines GROUP BY 1, 2, 3")
    }
    for (account, asset), (free, locked) in held.items():
        assert sums.pop((account, asset, "free"), 0) == free, (account, asset)
        assert sums.pop((account, asset, "locked"), 0) == locked, (account, asset)
    assert not [k for k, v in sums.items() if v and k[0] >= 0], "ledger lines of accounts that hold nothing"
    assert not [k for k, v in sums.items() if v and k[0] == SUSPENSE]
    per_asset = fetch(url, "SELECT asset, sum(amount) AS total FROM ledger_lines GROUP BY asset")
    assert all(r["total"] == 0 for r in per_asset), per_asset

    (history,) = fetch(url, "SELECT count(*) AS n FROM order_updates")
    assert history["n"] == expected_history_rows(events)
    refusals = Counter(
        {OrderRejected: "ORDER", CancelRejected: "CANCEL", FundingRejected: "FUNDING"}[type(ev)]
        for ev in events
        if isinstance(ev, OrderRejected | CancelRejected | FundingRejected)
    )
    db_refusals = Counter(
        {r["kind"]: r["n"] for r in fetch(url, "SELECT kind, count(*) AS n FROM rejections GROUP BY 1")}
    )
    assert db_refusals == refusals
    accounts = {r["account"] for r in fetch(url, "SELECT account FROM accounts")}
    assert accounts == {ev.account for ev in events if isinstance(ev, AccountCreated)}
    assert fetch(url, "SELECT reason FROM quarantine") == []


def add_garbage(venue: Venue, *payloads: bytes) -> int:
    """Append ``payloads`` to the events stream between the engine's entries (ids ``<last out_seq>-1``, ``-2``,
    ...), then more events from the engine after them; returns that last out_seq."""
    last = venue.stored_out_seq()
    r = venue.r()
    try:
        for i, payload in enumerate(payloads, start=1):
            r.xadd(keys.events(venue.shard), {b"b": payload}, id=f"{last}-{i}")
    finally:
        r.close()
    # the engine appends after the garbage before anyone reads the stream's last entry again
    venue.wait_engine(venue.fund(9_999, units=1))
    return last
