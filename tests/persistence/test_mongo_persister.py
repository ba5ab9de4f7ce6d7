"""The MongoDB persister as a process, on a real venue and the real MongoDB-protocol server (FerretDB in CI)."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest

from persistence.mongo import CONSUMER
from tests.harness import MongoServer, PostgresServer, Service, Venue, wait_for
from tests.persistence.checks import add_garbage
from tests.persistence.test_klines import brute_force
from tests.persistence.test_postgres_persister import replayed, run_load
from wire.events import TradeExecuted
from wire.venue import DEFAULT_VENUE, load_venue

READY = "mongo persister at out_seq"
SPECS = {s.symbol: s for s in load_venue(DEFAULT_VENUE).symbols}


def persister(venue: Venue, mongo_url: str) -> Service:
    env = dict(venue.env, MERCURY_MONGODB_URL=mongo_url)
    return Service("persistence.mongo", env, venue.dir / "mongo-persister.log", READY)


Db = pymongo.database.Database[dict[str, Any]]


@pytest.fixture
def db(mongo_url: str) -> Iterator[Db]:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5_000)
    yield client.get_default_database()
    client.close()


def offset(db: Db) -> int:
    doc = db.consumer_offsets.find_one({"_id": CONSUMER})
    return int(doc["out_seq"]) if doc else 0


def moved(db: Db, before: int) -> bool:
    return offset(db) != before


def wait_caught_up(venue: Venue, db: Db, timeout: float = 90) -> None:
    target = venue.stored_out_seq()
    wait_for(lambda: offset(db) >= target, timeout, f"the mongo persister to reach out_seq {target}")


def assert_market_data(venue: Venue, db: Db) -> None:
    """Ticks are exactly the trades, once each; klines are exactly the trades aggregated per closed window."""
    _, events = replayed(venue)
    trades = [ev for ev in events if isinstance(ev, TradeExecuted)]
    assert len(trades) > 20
    ticks = {doc["_id"]: doc for doc in db.ticks.find()}
    assert len(ticks) == len(trades)
    for t in trades:
        doc = ticks[f"{t.symbol}:{t.trade_id}"]
        assert (doc["price"], doc["qty"], doc["ts"], doc["out_seq"], doc["taker_side"]) == (
            t.price, t.qty, t.ts, t.out_seq, t.taker_side.name,
        )  # fmt: skip
    stored = db.consumer_offsets.find_one({"_id": CONSUMER})
    assert stored is not None
    now = stored["ts"]
    klines = {doc["_id"]: doc for doc in db.klines.find()}
    assert klines == brute_force(events, now, SPECS)
    assert list(db.quarantine.find()) == []


@pytest.mark.timeout(240)
def test_ticks_and_klines_equal_the_trades_after_kill9s_in_the_middle_of_writing(
    venue: Venue, mongo_url: str, db: Db
) -> None:
    venue.fund(*range(1, 7), units=10**11)
    run_load(venue, 6.0, rate=1500)  # a backlog: the persister starts later and writes for a while
    p = persister(venue, mongo_url)
    target = venue.stored_out_seq()
    kills = 0
    try:
        while offset(db) < target and kills < 3:
            before = offset(db)
            p.start()
            # Kill as soon as a batch has landed and before the last one: the next write is under way then.
            # A fixed sleep was not enough: on a fast machine the persister caught up within it (CI, 11,001 events).
            wait_for(functools.partial(moved, db, before), 60, "the mongo persister to commit a batch")
            if offset(db) >= target:
                break
            p.kill9()
            kills += 1
        assert kills >= 1, "the persister caught up before it could be killed: make the backlog bigger"
        if not p.alive():
            p.start()
        run_load(venue, 2.0)  # and live, after the restarts
        time.sleep(1.1)
        venue.fund(7, units=1)  # events stamped a second later: they close the klines of the load's last second
        wait_caught_up(venue, db)
        assert_market_data(venue, db)
    finally:
        p.stop()
    assert "ERROR" not in p.log()


@pytest.mark.timeout(120)
def test_a_malformed_entry_is_quarantined_in_mongodb_with_its_reason(venue: Venue, mongo_url: str, db: Db) -> None:
    venue.fund(1, 2, units=10**11)
    p = persister(venue, mongo_url)
    try:
        p.start()
        wait_caught_up(venue, db)
        last = add_garbage(venue, b"\xc1 not msgpack")
        wait_caught_up(venue, db)
        (doc,) = list(db.quarantine.find())
        assert (doc["consumer"], doc["stream_id"], doc["out_seq"]) == (CONSUMER, f"{last}-1", None)
        assert "bad event batch" in str(doc["reason"]) and doc["payload"] == b"\xc1 not msgpack"
    finally:
        p.stop()


@pytest.mark.timeout(180)
def test_the_mongodb_server_down_the_persister_retries_and_loses_nothing(
    venue: Venue, postgres_server: PostgresServer
) -> None:
    server = MongoServer(postgres_server, database=f"ferretdb_down_{os.getpid()}")
    server.start()
    url = server.url("down")
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(url, serverSelectionTimeoutMS=5_000)
    db = client.get_default_database()
    p = persister(venue, url)
    try:
        venue.fund(*range(1, 7), units=10**11)
        p.start()
        wait_caught_up(venue, db)
        server.stop_server()  # the MongoDB server goes away under load
        run_load(venue, 3.0)
        time.sleep(1.0)
        assert p.alive() and "starting over from the stored offset" in p.log()
        server.start()
        time.sleep(1.1)
        venue.fund(7, units=1)  # later events close the klines of the load's last second
        wait_caught_up(venue, db)
        assert_market_data(venue, db)
    finally:
        p.stop()
        client.close()
        server.stop()
