"""History queries (persistence.history) on a real PostgreSQL filled by the persister's store from engine events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from client.sequencer import CommandBuilder
from engine.core import Engine
from persistence.history import History, HistoryError
from persistence.postgres import PostgresStore
from persistence.stream import Chunk
from wire.commands import Command
from wire.enums import OrderType, Side, TimeInForce
from wire.venue import DEFAULT_VENUE, load_venue

VENUE = load_venue(DEFAULT_VENUE)
SYM = "BTCUSDT"
T0 = 1_800_000_000_000_000_000
STEP = 1_000_000_000  # one command a second
BUY, SELL = Side.BUY, Side.SELL


SETUP = 2 + 2 * len(VENUE.assets)  # two accounts and their deposits
# the orders of the flow: each order's id is the in_seq of the command that placed it
S1, S2, B1, S2_AGAIN, MKT = SETUP + 1, SETUP + 2, SETUP + 3, SETUP + 5, SETUP + 6


def flow() -> list[Command]:
    c = CommandBuilder("hist")
    cmds: list[Command] = [c.create_account(1), c.create_account(2)]
    cmds += [c.deposit(a, asset.name, 10**14) for a in (1, 2) for asset in VENUE.assets]
    assert len(cmds) == SETUP
    cmds += [
        c.place(1, SYM, SELL, 1_000, price=100_000, client_oid="s1"),  # S1
        c.place(1, SYM, SELL, 2_000, price=100_100, client_oid="s2"),  # S2
        c.place(2, SYM, BUY, 1_500, price=100_100, client_oid="b1"),  # B1: fills S1 (trade 1), then S2 (trade 2)
        c.cancel(1, SYM, client_oid="s2"),  # S2 canceled with 1 500 open
        c.place(1, SYM, SELL, 700, price=100_200, client_oid="s2"),  # S2_AGAIN: the client id again
        c.place(2, SYM, BUY, 600, price=0, type=OrderType.MARKET, tif=TimeInForce.IOC),  # MKT: trade 3 with S2_AGAIN
    ]
    return cmds


async def with_history(pg_url: str, body: Callable[[History], Awaitable[None]]) -> None:
    engine = Engine(VENUE.symbols, VENUE.assets)
    events = []
    for in_seq, cmd in enumerate(flow(), start=1):
        events += engine.apply(in_seq, T0 + in_seq * STEP, cmd)
    store = PostgresStore(pg_url, VENUE)
    await store.open()
    await store.commit(store.prepare(Chunk(events, [], "1-0")), "1-0", events[-1].out_seq)
    await store.close()
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=2)
    try:
        await body(History(pool, VENUE))
    finally:
        await pool.close()


def test_orders_by_id_or_client_id_open_ones_and_pages(pg_url: str) -> None:
    async def body(h: History) -> None:
        one = await h.order(1, SYM, order_id=S1)
        assert one is not None and (one.status, one.executed_qty, one.client_oid) == ("FILLED", 1_000, "s1")
        assert await h.order(2, SYM, order_id=S1) is None  # another account's order is not found
        assert await h.order(1, SYM, order_id=S1, client_oid="other") is None
        newest = await h.order(1, SYM, client_oid="s2")  # the client id was used twice: the newest order
        assert newest is not None
        assert (newest.order_id, newest.status, newest.leaves) == (S2_AGAIN, "PARTIALLY_FILLED", 100)
        canceled = await h.order(1, SYM, order_id=S2)
        assert canceled is not None and (canceled.status, canceled.executed_qty, canceled.leaves) == (
            "CANCELED",
            500,
            0,
        )
        assert [o.order_id for o in await h.open_orders(1)] == [S2_AGAIN]
        assert [o.order_id for o in await h.open_orders(1, SYM)] == [S2_AGAIN]
        assert await h.open_orders(2) == []
        assert [o.order_id for o in await h.orders(1, SYM)] == [S1, S2, S2_AGAIN]
        assert [o.order_id for o in await h.orders(1, SYM, limit=2)] == [S2, S2_AGAIN]  # the newest two, ascending
        assert [o.order_id for o in await h.orders(1, SYM, from_id=S2, limit=1)] == [S2]  # the next page
        window = await h.orders(1, SYM, start_ts=T0 + S2 * STEP, end_ts=T0 + S2_AGAIN * STEP)
        assert [o.order_id for o in window] == [S2, S2_AGAIN]  # stamped by their commands (in_seq = order id)
        updates = await h.order_updates(1, S2)
        assert [(u.kind, u.status, u.executed_qty) for u in updates] == [
            ("NEW", "NEW", 0),
            ("TRADE", "PARTIALLY_FILLED", 500),
            ("CANCELED", "CANCELED", 500),
        ]
        assert await h.order_updates(2, S2) == []

    asyncio.run(with_history(pg_url, body))


def test_trades_from_each_accounts_side(pg_url: str) -> None:
    async def body(h: History) -> None:
        spec = h.specs[SYM]
        seller = await h.trades(1, SYM)
        assert [(f.trade_id, f.order_id, f.is_maker, f.is_buyer, f.commission_asset) for f in seller] == [
            (1, S1, True, False, "USDT"),
            (2, S2, True, False, "USDT"),
            (3, S2_AGAIN, True, False, "USDT"),
        ]
        buyer = await h.trades(2, SYM)
        assert [(f.trade_id, f.order_id, f.is_maker, f.is_buyer, f.commission_asset) for f in buyer] == [
            (1, B1, False, True, "BTC"),
            (2, B1, False, True, "BTC"),
            (3, MKT, False, True, "BTC"),
        ]
        first = buyer[0]
        assert (first.price, first.qty, first.quote_qty) == (100_000, 1_000, 100_000 * 1_000 * spec.quote_per_tick_lot)
        assert first.commission == -(-1_000 * spec.base_per_lot * spec.taker_fee_bps // 10_000)
        assert [f.trade_id for f in await h.trades(2, SYM, order_id=B1)] == [1, 2]
        assert [f.trade_id for f in await h.trades(1, SYM, from_id=2, limit=1)] == [2]
        assert [f.trade_id for f in await h.trades(1, SYM, limit=1)] == [3]
        assert await h.trades(1, "ETHUSDT") == []

    asyncio.run(with_history(pg_url, body))


def test_bad_queries_are_refused_and_reads_wait_for_the_persister(pg_url: str) -> None:
    async def body(h: History) -> None:
        with pytest.raises(HistoryError, match=r"limit must be 1\.\.1000, not 0"):
            await h.orders(1, SYM, limit=0)
        with pytest.raises(HistoryError, match=r"limit must be 1\.\.1000, not 1001"):
            await h.trades(1, SYM, limit=1001)
        with pytest.raises(HistoryError, match="unknown symbol 'XYZ'"):
            await h.open_orders(1, "XYZ")
        with pytest.raises(HistoryError, match="end of the time window is before its start"):
            await h.trades(1, SYM, start_ts=5, end_ts=4)
        with pytest.raises(HistoryError, match="order id or a client order id is required"):
            await h.order(1, SYM)
        applied = await h.applied()
        assert applied > 0
        assert await h.wait_until(applied, timeout=0.1)
        assert not await h.wait_until(applied + 1, timeout=0.1)  # not reached: the caller answers "try again"

    asyncio.run(with_history(pg_url, body))
