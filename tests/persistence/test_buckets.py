"""Bucket reads (persistence.buckets) and the store's layout upgrade (persistence.mongo_layout) on the real
MongoDB-protocol server: every scan gives what one range query gives, in the same order, whatever the gaps; the
number of queries stays bounded; a store written before buckets is upgraded without losing a document, a copy cut
short is made again, and of two persisters on one store only one rewrites it."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pymongo
import pytest
from pymongo import AsyncMongoClient

from persistence import buckets
from persistence.klines import SECOND, kline_bucket, tick_bucket
from persistence.mongo_layout import LAYOUT, LOCK, META, Lease, LeaseLost, is_current, is_current_sync, upgrade

Doc = dict[str, Any]
SYMBOL = "BTCUSDT"


@pytest.fixture
def db(mongo_url: str) -> Iterator[pymongo.database.Database[Doc]]:
    client: pymongo.MongoClient[Doc] = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5_000)
    yield client.get_default_database()
    client.close()


def tick(trade_id: int, bucketed: bool = True) -> Doc:
    doc = {"_id": f"{SYMBOL}:{trade_id}", "symbol": SYMBOL, "trade_id": trade_id, "ts": trade_id * 1_000_000}
    return doc | ({"bucket": tick_bucket(trade_id)} if bucketed else {})


def kline(open_time: int, bucketed: bool = True) -> Doc:
    doc = {"_id": f"{SYMBOL}:1s:{open_time}", "symbol": SYMBOL, "interval": "1s", "open_time": open_time}
    return doc | ({"bucket": kline_bucket("1s", open_time)} if bucketed else {})


@contextlib.asynccontextmanager
async def async_db(mongo_url: str) -> AsyncIterator[Any]:
    """The test database over a connection of its own (a persister's)."""
    client: AsyncMongoClient[Doc] = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=5_000)
    try:
        yield client.get_default_database()
    finally:
        await client.close()


class Counting:
    """A collection that counts the finds a scan makes (it still runs them, on the real server)."""

    def __init__(self, collection: pymongo.collection.Collection[Doc]) -> None:
        self.collection = collection
        self.finds = 0

    def find(self, *args: Any, **kwargs: Any) -> pymongo.cursor.Cursor[Doc]:
        self.finds += 1
        return self.collection.find(*args, **kwargs)


def test_scans_equal_range_queries_across_gaps_with_bounded_queries(db: pymongo.database.Database[Doc]) -> None:
    rng = random.Random(7)
    db.ticks.insert_many([tick(i) for i in range(1, 5_001)])
    # seconds with trades: dense runs, short gaps and one silent stretch of 50 buckets (50 000 s)
    seconds = sorted({*range(0, 3_000), *rng.sample(range(3_000, 9_000), 800), *range(59_000, 61_000)})
    db.klines.insert_many([kline(s * SECOND) for s in seconds])

    def both(collection: str, scan: buckets.Scan, order: list[tuple[str, int]]) -> tuple[list[Doc], list[Doc], int]:
        counting = Counting(db[collection])
        got = buckets.run_sync(counting, scan)  # type: ignore[arg-type]
        query = scan.base | {scan.key: {"$gte": scan.lo, "$lte": scan.hi}}
        want = list(db[collection].find(query, sort=order, limit=scan.limit))
        return got, want, counting.finds

    got, want, finds = both("ticks", buckets.ticks(SYMBOL, 1, 4_999, descending=True, limit=500),
                            [("trade_id", -1)])  # fmt: skip
    assert got == want and len(got) == 500 and finds == 1  # the newest 500 are in the last bucket
    got, want, finds = both("ticks", buckets.ticks(SYMBOL, 1_500, 3_200), [("trade_id", 1)])
    assert got == want and len(got) == 1_701 and finds == 3
    cases = [(0, 61_000, True, 120), (2_990, 3_010, False, 0), (2_000, 70_000, False, 0), (0, 70_000, True, 0),
             (8_999, 59_500, True, 1), (9_100, 58_000, False, 0)]  # fmt: skip
    for lo_s, hi_s, desc, limit in cases:
        scan = buckets.klines(SYMBOL, "1s", lo_s * SECOND, hi_s * SECOND, descending=desc, limit=limit)
        got, want, finds = both("klines", scan, [("open_time", -1 if desc else 1)])
        assert got == want, (lo_s, hi_s, desc, limit)
        # a silent stretch costs at most MAX_EMPTY empty buckets and one range query
        assert finds <= (hi_s - lo_s) // 1_000 + 2 and finds <= 2 * buckets.MAX_EMPTY + 70, (lo_s, hi_s, finds)
    # the last trade of a second, found by a stop on time
    last_second = buckets.ticks(SYMBOL, 1, 4_321, descending=True, stop=lambda t: t["ts"] < 4_000 * 1_000_000)
    assert [t["trade_id"] for t in buckets.run_sync(db.ticks, last_second)] == list(range(4_321, 3_999, -1))


def test_a_store_without_the_layout_is_read_by_range_queries(db: pymongo.database.Database[Doc]) -> None:
    db.ticks.insert_many([tick(i, bucketed=False) for i in range(1, 300)])
    assert not is_current_sync(db)
    old = buckets.ticks(SYMBOL, 10, 20, bucketed=False)
    assert [t["trade_id"] for t in buckets.run_sync(db.ticks, old)] == list(range(10, 21))
    assert buckets.run_sync(db.ticks, buckets.ticks(SYMBOL, 10, 20)) == []  # what the layout check is for


def test_upgrade_rewrites_every_document_with_its_bucket_and_survives_a_cut_short_copy(mongo_url: str) -> None:
    async def go() -> None:
        client: AsyncMongoClient[Doc] = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=5_000)
        db = client.get_default_database()
        try:
            ticks = [tick(i, bucketed=False) for i in range(1, 2_500)]
            klines = [kline(s * SECOND, bucketed=False) for s in range(0, 3_000, 3)]
            await db.ticks.insert_many([dict(t) for t in ticks])
            await db.klines.insert_many([dict(k) for k in klines])
            await db["ticks_layout1"].insert_many([tick(1)])  # a copy a crash cut short
            assert not await is_current(db)
            await upgrade(db)
            assert await is_current(db) and LAYOUT == 1
            stored_ticks = await db.ticks.find({}, sort=[("trade_id", 1)]).to_list()
            assert stored_ticks == [t | {"bucket": tick_bucket(t["trade_id"])} for t in ticks]
            stored_klines = await db.klines.find({}, sort=[("open_time", 1)]).to_list()
            assert stored_klines == [k | {"bucket": kline_bucket("1s", k["open_time"])} for k in klines]
            assert "ticks_layout1" not in await db.list_collection_names()
            scan = buckets.ticks(SYMBOL, 990, 1_010)
            assert [t["trade_id"] for t in await buckets.run(db.ticks, scan)] == list(range(990, 1_011))
            # stopped after the old collection was dropped: the whole copy is renamed into place
            await db.meta.delete_many({})
            await db.klines.rename("klines_layout1")
            await upgrade(db)
            assert await db.klines.count_documents({}) == len(klines)
            await upgrade(db)  # a no-op once current
            assert await db.ticks.count_documents({}) == len(ticks)
        finally:
            await client.close()

    asyncio.run(go())


async def old_store(db: Any) -> tuple[list[Doc], list[Doc]]:
    """Ticks and klines stored before buckets; returns them as stored."""
    ticks = [tick(i, bucketed=False) for i in range(1, 4_500)]
    klines = [kline(s * SECOND, bucketed=False) for s in range(1_500)]
    await db.ticks.insert_many([dict(t) for t in ticks])
    await db.klines.insert_many([dict(k) for k in klines])
    return ticks, klines


async def assert_upgraded(db: Any, ticks: list[Doc], klines: list[Doc]) -> None:
    assert await is_current(db)
    stored_ticks = await db.ticks.find({}, sort=[("trade_id", 1)]).to_list()
    assert stored_ticks == [t | {"bucket": tick_bucket(t["trade_id"])} for t in ticks]
    stored_klines = await db.klines.find({}, sort=[("open_time", 1)]).to_list()
    assert stored_klines == [k | {"bucket": kline_bucket("1s", k["open_time"])} for k in klines]
    assert await db.meta.find_one(LOCK) is None  # released
    assert not {"ticks_layout1", "klines_layout1"} & set(await db.list_collection_names())


def test_two_persisters_upgrading_one_store_at_once_lose_nothing(mongo_url: str) -> None:
    """Each with its own connection, started together: one rewrites under the lease, the other waits for the
    layout; without the lease one could drop the collection the other copies from."""

    async def go() -> None:
        async with async_db(mongo_url) as one, async_db(mongo_url) as two:
            ticks, klines = await old_store(one)
            await asyncio.gather(upgrade(one), upgrade(two))
            await assert_upgraded(one, ticks, klines)

    asyncio.run(go())


def test_the_upgrade_waits_for_a_live_lease_and_takes_over_an_expired_one(mongo_url: str) -> None:
    async def go() -> None:
        async with async_db(mongo_url) as db:
            ticks, klines = await old_store(db)
            await db.meta.insert_one(LOCK | {"owner": "other", "until": time.time() + 60})
            waiting = asyncio.create_task(upgrade(db))
            await asyncio.sleep(1.5)
            assert not waiting.done() and not await is_current(db)
            assert await db.ticks.count_documents({"bucket": {"$exists": True}}) == 0  # nothing touched
            # the holder stops renewing (killed): its lease expires and the waiting persister takes over
            await db.meta.update_one(LOCK, {"$set": {"until": time.time() - 1}})
            await asyncio.wait_for(waiting, 60)
            await assert_upgraded(db, ticks, klines)

            # a holder that finished: the waiter sees the layout current and rewrites nothing
            await db.meta.delete_one(META)
            await db.meta.insert_one(LOCK | {"owner": "other", "until": time.time() + 60})
            waiting = asyncio.create_task(upgrade(db))
            await asyncio.sleep(0.8)
            assert not waiting.done()
            await db.meta.insert_one(META | {"version": LAYOUT})
            await asyncio.wait_for(waiting, 10)
            assert await db.meta.find_one(LOCK) is not None  # the other's lease is the other's to release

    asyncio.run(go())


def test_a_holder_whose_lease_was_taken_over_stops(mongo_url: str) -> None:
    async def go() -> None:
        async with async_db(mongo_url) as db:
            stalled, other = Lease(db, seconds=0.6), Lease(db, seconds=60)
            assert await stalled.take() and not await other.take()
            await asyncio.sleep(0.7)  # stalled past its lease: the other removes it, then holds it
            assert not await other.take() and await other.take()
            with pytest.raises(LeaseLost):
                await stalled.keep()
            await stalled.release()  # releases only its own
            assert (await db.meta.find_one(LOCK) or {}).get("owner") == other.owner

    asyncio.run(go())
