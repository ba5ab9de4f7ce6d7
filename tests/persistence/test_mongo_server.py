"""The MongoDB-protocol server of development and CI (FerretDB over the session's PostgreSQL, or the real MongoDB
of MERCURY_MONGODB_URL), driven with pymongo: what Mercury's MongoDB persister relies on, and the bulk_write batch
size that FerretDB v1.24.2 can take (persistence.mongo_server.SAFE_BULK_WRITE).

Every client has timeouts, so a server that hangs fails the test instead of blocking the run."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest
from pymongo import ReplaceOne
from pymongo.errors import DuplicateKeyError, NetworkTimeout

from persistence.mongo_server import SAFE_BULK_WRITE, command, ensure_database, port_of, with_database
from tests.harness import MongoServer, PostgresServer

Doc = dict[str, Any]


def connect(url: str, socket_timeout_ms: int = 30_000) -> pymongo.MongoClient[Doc]:
    return pymongo.MongoClient(
        url, serverSelectionTimeoutMS=5_000, connectTimeoutMS=5_000, socketTimeoutMS=socket_timeout_ms
    )


@pytest.fixture
def db(mongo_url: str) -> Iterator[pymongo.database.Database[Doc]]:
    with connect(mongo_url) as client:
        yield client.get_default_database()


def test_insert_and_find(db: pymongo.database.Database[Doc]) -> None:
    trades = db.trades
    trades.insert_many([{"_id": i, "symbol": "BTCUSDT", "qty": 1000 * i, "price": 100_000 + i} for i in range(1, 6)])
    trades.insert_one({"_id": 6, "symbol": "ETHUSDT", "qty": 7, "price": 3_000})
    assert trades.count_documents({}) == 6
    found = list(trades.find({"symbol": "BTCUSDT", "qty": {"$gte": 3000}}).sort("_id", pymongo.ASCENDING))
    assert [d["_id"] for d in found] == [3, 4, 5]
    assert trades.find_one({"_id": 6}) == {"_id": 6, "symbol": "ETHUSDT", "qty": 7, "price": 3_000}
    assert trades.find_one({"_id": 7}) is None


def test_replace_one_upsert_is_idempotent(db: pymongo.database.Database[Doc]) -> None:
    orders = db.orders
    order = {"_id": "e0:42", "account": 7, "status": "NEW", "filled": 0}
    first = orders.replace_one({"_id": order["_id"]}, order, upsert=True)
    assert first.upserted_id == "e0:42"
    assert first.matched_count == 0
    again = orders.replace_one({"_id": order["_id"]}, order, upsert=True)
    assert again.upserted_id is None
    assert again.matched_count == 1
    assert orders.count_documents({}) == 1
    assert orders.find_one({"_id": "e0:42"}) == order
    filled = {**order, "status": "FILLED", "filled": 1000}
    assert orders.replace_one({"_id": order["_id"]}, filled, upsert=True).modified_count == 1
    assert list(orders.find({})) == [filled]


def test_unique_index_rejects_a_duplicate(db: pymongo.database.Database[Doc]) -> None:
    events = db.events
    events.create_index([("shard", pymongo.ASCENDING), ("out_seq", pymongo.ASCENDING)], unique=True)
    events.insert_one({"shard": "e0", "out_seq": 1, "kind": "trade"})
    events.insert_one({"shard": "e1", "out_seq": 1, "kind": "trade"})  # another shard: not a duplicate
    with pytest.raises(DuplicateKeyError):
        events.insert_one({"shard": "e0", "out_seq": 1, "kind": "again"})
    assert events.count_documents({}) == 2
    assert events.find_one({"shard": "e0", "out_seq": 1}, {"_id": 0}) == {"shard": "e0", "out_seq": 1, "kind": "trade"}


def upserts(ids: range, version: int) -> list[ReplaceOne[Doc]]:
    return [ReplaceOne({"_id": i}, {"_id": i, "v": version}, upsert=True) for i in ids]


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "unordered"])
def test_bulk_write_of_the_safe_batch_size_completes(db: pymongo.database.Database[Doc], ordered: bool) -> None:
    """A batch of SAFE_BULK_WRITE upserts, in each of its cases: all inserts, all replacing a document with a
    different one (the case that holds the most PostgreSQL connections in FerretDB), all replacing it with the same
    one; then the next batch."""
    coll = db.positions
    batch = range(SAFE_BULK_WRITE)
    inserted = coll.bulk_write(upserts(batch, 1), ordered=ordered)
    assert (inserted.upserted_count, inserted.matched_count) == (SAFE_BULK_WRITE, 0)
    changed = coll.bulk_write(upserts(batch, 2), ordered=ordered)
    assert (changed.upserted_count, changed.matched_count, changed.modified_count) == (
        0,
        SAFE_BULK_WRITE,
        SAFE_BULK_WRITE,
    )
    same = coll.bulk_write(upserts(batch, 2), ordered=ordered)
    assert (same.upserted_count, same.matched_count, same.modified_count) == (0, SAFE_BULK_WRITE, 0)
    following = coll.bulk_write(upserts(range(SAFE_BULK_WRITE, 2 * SAFE_BULK_WRITE), 1), ordered=ordered)
    assert following.upserted_count == SAFE_BULK_WRITE
    assert coll.count_documents({}) == 2 * SAFE_BULK_WRITE
    assert coll.count_documents({"v": 2}) == SAFE_BULK_WRITE


def test_two_writers_at_once_with_the_safe_batch_size_complete(mongo_url: str) -> None:
    """SAFE_BULK_WRITE leaves room for two clients replacing documents at the same time (FerretDB's connection pool
    is shared by all its clients)."""
    with connect(mongo_url) as client:
        colls = [client.get_default_database()[f"writer_{w}"] for w in range(2)]
        for coll in colls:
            coll.insert_many([{"_id": i, "v": 0} for i in range(SAFE_BULK_WRITE)])
        errors: list[BaseException] = []
        start = threading.Barrier(len(colls))

        def write(coll: pymongo.collection.Collection[Doc]) -> None:
            try:
                start.wait(10)
                for version in range(1, 6):
                    result = coll.bulk_write(upserts(range(SAFE_BULK_WRITE), version))
                    assert result.modified_count == SAFE_BULK_WRITE
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(coll,)) for coll in colls]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert [coll.count_documents({"v": 5}) for coll in colls] == [SAFE_BULK_WRITE, SAFE_BULK_WRITE]


def test_the_limit_is_ferretdbs_pool(request: pytest.FixtureRequest) -> None:
    """Why SAFE_BULK_WRITE exists: on FerretDB v1.24.2, a bulk_write whose upserts each replace a document with a
    different one completes with one statement fewer than FerretDB's pool of PostgreSQL connections and never
    completes with as many (50 with the pool of persistence/ferretdb/main.go). Shown here with a pool of 10, on a
    FerretDB of the test's own (a hang wedges the server), so that it holds few of the test PostgreSQL's
    connections. A real MongoDB (MERCURY_MONGODB_URL) takes 50. If this fails on FerretDB because the batch went
    through, FerretDB was fixed and SAFE_BULK_WRITE can go up."""
    external = os.environ.get("MERCURY_MONGODB_URL") or None
    postgres: PostgresServer | None = None if external else request.getfixturevalue("postgres_server")
    pool = 10
    server = MongoServer(postgres, external, database=f"ferretdb_pool_{os.getpid()}", pool_max_conns=pool)
    server.start()
    database = f"limit_{os.getpid()}"
    try:
        with connect(server.url(database), socket_timeout_ms=5_000) as client:
            coll = client[database].positions
            coll.insert_many([{"_id": n, "v": 0} for n in range(50)])
            if external:
                assert coll.bulk_write(upserts(range(50), 1)).modified_count == 50
                return
            assert coll.bulk_write(upserts(range(pool - 1), 1)).modified_count == pool - 1
            with pytest.raises(NetworkTimeout):
                coll.bulk_write(upserts(range(pool), 2))
            assert server.alive()
    finally:
        if external:
            server.drop_database(database)
        server.stop()


def test_command_and_urls() -> None:
    argv = command(27018, "postgresql://mercury@127.0.0.1:6543/ferretdb")
    assert argv[0].endswith("var/bin/mercury-ferretdb")
    assert argv[1:5] == [
        "-listen",
        "127.0.0.1:27018",
        "-postgresql-url",
        "postgresql://mercury@127.0.0.1:6543/ferretdb",
    ]
    assert port_of("mongodb://127.0.0.1:27018/mercury") == 27018
    assert port_of("mongodb://localhost/mercury") == 27017
    assert with_database("postgresql://mercury@127.0.0.1:6543/mercury", "ferretdb") == (
        "postgresql://mercury@127.0.0.1:6543/ferretdb"
    )
    assert with_database("mongodb://h:1/a?authSource=admin", "test_1") == "mongodb://h:1/test_1?authSource=admin"


def test_ensure_database_creates_it_once(postgres_server: PostgresServer) -> None:
    """What bin/mongo-local does before it starts FerretDB on the project's PostgreSQL."""
    name = f"ferretdb_ensure_{os.getpid()}"
    assert asyncio.run(ensure_database(postgres_server.url(), name)) is True
    assert asyncio.run(ensure_database(postgres_server.url(), name)) is False
