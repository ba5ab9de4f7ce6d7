"""``python -m persistence.mongo``: the MongoDB persister (ticks and closed klines), consumer ``mongo`` of the
events stream, on MERCURY_MONGODB_URL: the project's FerretDB in development and CI (persistence.mongo_server), a
real MongoDB in docker-compose. Only plain CRUD, bulk writes and indexes are used, so either serves.

MongoDB offers no transaction here that FerretDB also has, so exactly-once comes from idempotence instead: every
document has a deterministic ``_id`` (``<symbol>:<trade id>`` for a tick, ``<symbol>:<interval>:<open time>`` for a
kline), and the offset is written after the documents. A crash between the two makes the restarted persister write
some documents again, with the same content (a tick never changes, nor does a closed kline: the restart rebuilds
the open klines from what was stored as of the offset, so the same events close them the same way), by an insert
whose duplicate-key errors mean "already written". Inserting, not upserting, also keeps the write cost flat: on
FerretDB an upsert finds its document by a scan of the whole collection (26 ms a kline at 100 000 klines, against
0.6 ms an insert, measured).

Collections: ``ticks`` and ``klines`` (each document with its ``bucket``, persistence.buckets), ``consumer_offsets``
({_id: consumer, out_seq, stream_id, ts, trade_ids: {symbol: last trade}}), ``quarantine`` and ``meta`` (the
documents' layout, persistence.mongo_layout).
"""

from __future__ import annotations

import itertools
import logging
import sys
from dataclasses import dataclass
from typing import Any

import pymongo
import pymongo.errors
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from persistence import buckets
from persistence.consumer import run_persister
from persistence.klines import INTERVALS, SECOND, Doc, Kline, KlineModel, rebuild
from persistence.mongo_layout import upgrade
from persistence.mongo_server import SAFE_BULK_WRITE
from persistence.stream import Chunk, Quarantined
from wire.codec import encode
from wire.venue import Venue

log = logging.getLogger("mercury.persistence.mongo")

CONSUMER = "mongo"

INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "ticks": [
        ([("symbol", ASCENDING), ("bucket", ASCENDING)], {}),  # persistence.buckets' reads
        ([("symbol", ASCENDING), ("trade_id", ASCENDING)], {}),  # a real MongoDB's range reads
        ([("symbol", ASCENDING), ("ts", ASCENDING)], {}),  # a symbol's trades over time
    ],
    "klines": [
        ([("symbol", ASCENDING), ("interval", ASCENDING), ("bucket", ASCENDING)], {}),
        ([("symbol", ASCENDING), ("interval", ASCENDING), ("open_time", ASCENDING)], {"unique": True}),
    ],
}


@dataclass(slots=True)
class MongoBatch:
    ticks: list[Doc]
    klines: list[Doc]
    quarantine: list[Doc]
    now: int  # ts of the batch's last event: where the klines' clock stood
    quarantined: int
    trade_ids: dict[str, int]  # symbol -> its last trade in the batch or before


DUPLICATE_KEY = 11000
INSERT_BATCH = 1_000


class MongoStore:
    transient: tuple[type[Exception], ...] = (pymongo.errors.ConnectionFailure, pymongo.errors.AutoReconnect)

    def __init__(self, url: str, venue: Venue, consumer: str = CONSUMER) -> None:
        self.url = url
        self.venue = venue
        self.consumer = consumer
        self.client: AsyncMongoClient[Doc] | None = None
        self.db: AsyncDatabase[Doc] | None = None
        self.model = KlineModel({})

    async def open(self) -> tuple[str, int]:
        client = self.client = AsyncMongoClient(self.url, serverSelectionTimeoutMS=3_000, socketTimeoutMS=30_000)
        db = self.db = client.get_default_database("mercury")
        await upgrade(db)  # before anything is written in the new layout
        for collection, indexes in INDEXES.items():
            for keys, options in indexes:
                await db[collection].create_index(keys, **options)
        offset = await db.consumer_offsets.find_one({"_id": self.consumer}) or {}
        out_seq, stream_id, now = offset.get("out_seq", 0), offset.get("stream_id", "0-0"), offset.get("ts", 0)
        trade_ids: dict[str, int] = dict(offset.get("trade_ids", {}))
        if out_seq and "trade_ids" not in offset:  # an offset written before it kept them: look once
            trade_ids = {s.symbol: await last_trade_id(db, s.symbol, out_seq) for s in self.venue.symbols}
        open_klines: list[Kline] = []
        for spec in self.venue.symbols:
            # upgraded above: the store's documents carry their buckets
            open_klines += await stored_open_klines(db, spec.symbol, trade_ids.get(spec.symbol, 0), bucketed=True)
        self.model = KlineModel({s.symbol: s for s in self.venue.symbols}, open_klines, now, trade_ids)
        return stream_id, out_seq

    def prepare(self, chunk: Chunk) -> MongoBatch:
        unusable = self.model.apply(chunk.events)
        ticks, klines = self.model.take()
        quarantined = chunk.quarantined + [
            Quarantined(chunk.stream_id, ev.out_seq, encode(ev), f"unknown symbol {getattr(ev, 'symbol', '')!r}")
            for ev in unusable
        ]
        docs = [self._quarantine_doc(q, chunk) for q in quarantined]
        return MongoBatch(ticks, klines, docs, self.model.now, len(docs), dict(self.model.trade_ids))

    async def commit(self, batch: MongoBatch, stream_id: str, out_seq: int) -> None:
        db = self.db
        assert db is not None
        await self._insert(db, "ticks", batch.ticks)
        await self._insert(db, "klines", batch.klines)
        await self._upsert(db, "quarantine", batch.quarantine)
        offset = {"out_seq": out_seq, "stream_id": stream_id, "ts": batch.now, "trade_ids": batch.trade_ids}
        await db.consumer_offsets.replace_one({"_id": self.consumer}, offset, upsert=True)

    def _quarantine_doc(self, q: Quarantined, chunk: Chunk) -> Doc:
        stream_id = q.stream_id or chunk.stream_id
        return {
            "_id": f"{self.consumer}:{stream_id}:{q.out_seq}",
            "consumer": self.consumer,
            "stream_id": stream_id,
            "out_seq": q.out_seq,
            "payload": q.payload,
            "reason": q.reason,
        }

    @staticmethod
    async def _insert(db: AsyncDatabase[Doc], collection: str, docs: list[Doc]) -> None:
        """Insert documents that never change once written (ticks, closed klines): a document already there is the
        same one, written before a crash, so a duplicate key is success. Inserting costs FerretDB a fraction of an
        upsert (no lookup first) and holds no pooled connection per document, so batches may be large."""
        for i in range(0, len(docs), INSERT_BATCH):
            try:
                await db[collection].insert_many(docs[i : i + INSERT_BATCH], ordered=False)
            except pymongo.errors.BulkWriteError as exc:
                others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
                if others or exc.details.get("writeConcernErrors"):
                    raise

    @staticmethod
    async def _upsert(db: AsyncDatabase[Doc], collection: str, docs: list[Doc]) -> None:
        # only for the rare quarantine documents: an upsert costs FerretDB a scan of the collection. FerretDB 1.24
        # hangs on larger bulk writes (see persistence.mongo_server.SAFE_BULK_WRITE); a real MongoDB takes any
        # size, and these batches cost it only a few more round trips
        for i in range(0, len(docs), SAFE_BULK_WRITE):
            ops = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs[i : i + SAFE_BULK_WRITE]]
            await db[collection].bulk_write(ops, ordered=False)

    async def close(self) -> None:
        client, self.client, self.db = self.client, None, None
        if client is not None:
            await client.close()


async def last_trade_id(db: AsyncDatabase[Doc], symbol: str, out_seq: int) -> int:
    """The id of the symbol's last stored trade at or before ``out_seq`` (0: none), by a range query: only for an
    offset written before offsets kept their trade ids."""
    last = await db.ticks.find_one({"symbol": symbol, "out_seq": {"$lte": out_seq}}, sort=[("out_seq", DESCENDING)])
    return 0 if last is None else int(last["trade_id"])


async def stored_open_klines(db: AsyncDatabase[Doc], symbol: str, trade_id: int, bucketed: bool) -> list[Kline]:
    """The symbol's open klines (the stored intervals) as of its trade ``trade_id``, from what this persister stored
    up to at least that trade (see persistence.klines.rebuild); the market-data feeds start from it too. It reads
    the trades of the last one's second and the closed klines inside the longer intervals' windows: a few buckets,
    whatever the history (``bucketed``: the store's layout is current, persistence.mongo_layout)."""
    last = await buckets.run(db.ticks, buckets.ticks(symbol, 1, trade_id, descending=True, limit=1, bucketed=bucketed))
    if not last:
        return []
    ts = last[0]["ts"]
    second = ts - ts % SECOND
    of_second = buckets.ticks(symbol, 1, last[0]["trade_id"], descending=True, stop=lambda t: t["ts"] < second,
                              bucketed=bucketed)  # fmt: skip
    newest_first = await buckets.run(db.ticks, of_second)
    closed: dict[str, list[Doc]] = {}
    for (shorter, width), (_, longer) in itertools.pairwise(INTERVALS):
        window = buckets.klines(symbol, shorter, ts - ts % longer, ts - ts % width - 1, bucketed=bucketed)
        closed[shorter] = await buckets.run(db.klines, window)
    return rebuild(symbol, newest_first[::-1], closed)


def main() -> int:
    return run_persister(lambda settings, venue: MongoStore(settings.mongodb_url, venue))


if __name__ == "__main__":
    sys.exit(main())
