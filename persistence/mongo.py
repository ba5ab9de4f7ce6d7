"""``python -m persistence.mongo``: the MongoDB persister (ticks and closed klines), consumer ``mongo`` of the
events stream, on MERCURY_MONGODB_URL: the project's FerretDB in development and CI (persistence.mongo_server), a
real MongoDB in docker-compose. Only plain CRUD, bulk writes and indexes are used, so either serves.

MongoDB offers no transaction here that FerretDB also has, so exactly-once comes from idempotence instead: every
document has a deterministic ``_id`` (``<symbol>:<trade id>`` for a tick, ``<symbol>:<interval>:<open time>`` for a
kline), and the offset is written after the documents. A crash between the two makes the restarted persister write
some documents again, with the same content: klines by an upsert that replaces the document whole, ticks (which
never change) by an insert whose duplicate-key errors mean "already written".

Collections: ``ticks``, ``klines``, ``consumer_offsets`` ({_id: consumer, out_seq, stream_id, ts}), ``quarantine``.
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

from persistence.consumer import run_persister
from persistence.klines import INTERVALS, SECOND, Doc, Kline, KlineModel, rebuild
from persistence.mongo_server import SAFE_BULK_WRITE
from persistence.stream import Chunk, Quarantined
from wire.codec import encode
from wire.venue import Venue

log = logging.getLogger("mercury.persistence.mongo")

CONSUMER = "mongo"

INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "ticks": [
        ([("symbol", ASCENDING), ("ts", ASCENDING)], {}),  # a symbol's trades over time
        ([("symbol", ASCENDING), ("out_seq", ASCENDING)], {}),  # the restart's last tick
    ],
    "klines": [([("symbol", ASCENDING), ("interval", ASCENDING), ("open_time", ASCENDING)], {"unique": True})],
}


@dataclass(slots=True)
class MongoBatch:
    ticks: list[Doc]
    klines: list[Doc]
    quarantine: list[Doc]
    now: int  # ts of the batch's last event: where the klines' clock stood
    quarantined: int


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
        for collection, indexes in INDEXES.items():
            for keys, options in indexes:
                await db[collection].create_index(keys, **options)
        offset = await db.consumer_offsets.find_one({"_id": self.consumer}) or {}
        out_seq, stream_id, now = offset.get("out_seq", 0), offset.get("stream_id", "0-0"), offset.get("ts", 0)
        open_klines: list[Kline] = []
        for spec in self.venue.symbols:
            open_klines += await stored_open_klines(db, spec.symbol, out_seq)
        self.model = KlineModel({s.symbol: s for s in self.venue.symbols}, open_klines, now)
        return stream_id, out_seq

    def prepare(self, chunk: Chunk) -> MongoBatch:
        unusable = self.model.apply(chunk.events)
        ticks, klines = self.model.take()
        quarantined = chunk.quarantined + [
            Quarantined(chunk.stream_id, ev.out_seq, encode(ev), f"unknown symbol {getattr(ev, 'symbol', '')!r}")
            for ev in unusable
        ]
        docs = [self._quarantine_doc(q, chunk) for q in quarantined]
        return MongoBatch(ticks, klines, docs, self.model.now, len(docs))

    async def commit(self, batch: MongoBatch, stream_id: str, out_seq: int) -> None:
        db = self.db
        assert db is not None
        await self._insert(db, "ticks", batch.ticks)
        await self._upsert(db, "klines", batch.klines)
        await self._upsert(db, "quarantine", batch.quarantine)
        await db.consumer_offsets.replace_one(
            {"_id": self.consumer}, {"out_seq": out_seq, "stream_id": stream_id, "ts": batch.now}, upsert=True
        )

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
        """Insert documents that never change once written (ticks): a document already there is the same one,
        written before a crash, so a duplicate key is success. Inserting costs FerretDB a fraction of an upsert
        (no lookup first) and holds no pooled connection per document, so batches may be large."""
        for i in range(0, len(docs), INSERT_BATCH):
            try:
                await db[collection].insert_many(docs[i : i + INSERT_BATCH], ordered=False)
            except pymongo.errors.BulkWriteError as exc:
                others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
                if others or exc.details.get("writeConcernErrors"):
                    raise

    @staticmethod
    async def _upsert(db: AsyncDatabase[Doc], collection: str, docs: list[Doc]) -> None:
        # FerretDB 1.24 hangs on larger bulk writes (see persistence.mongo_server.SAFE_BULK_WRITE); a real MongoDB
        # takes any size, and these batches cost it only a few more round trips
        for i in range(0, len(docs), SAFE_BULK_WRITE):
            ops = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs[i : i + SAFE_BULK_WRITE]]
            await db[collection].bulk_write(ops, ordered=False)

    async def close(self) -> None:
        client, self.client, self.db = self.client, None, None
        if client is not None:
            await client.close()


async def stored_open_klines(db: AsyncDatabase[Doc], symbol: str, out_seq: int) -> list[Kline]:
    """The symbol's open klines (the stored intervals) as of ``out_seq``, from what this persister stored up to at
    least that point (see persistence.klines.rebuild); the market-data feeds start from it too."""
    last = await db.ticks.find_one({"symbol": symbol, "out_seq": {"$lte": out_seq}}, sort=[("out_seq", DESCENDING)])
    if last is None:
        return []
    ts = last["ts"]
    second = ts - ts % SECOND
    last_ticks = await db.ticks.find(
        {"symbol": symbol, "ts": {"$gte": second}, "out_seq": {"$lte": out_seq}}, sort=[("out_seq", ASCENDING)]
    ).to_list()
    closed: dict[str, list[Doc]] = {}
    for (shorter, width), (_, longer) in itertools.pairwise(INTERVALS):
        closed[shorter] = await db.klines.find(
            {
                "symbol": symbol,
                "interval": shorter,
                "open_time": {"$gte": ts - ts % longer, "$lt": ts - ts % width},
            },
            sort=[("open_time", ASCENDING)],
        ).to_list()
    return rebuild(symbol, last_ticks, closed)


def main() -> int:
    return run_persister(lambda settings, venue: MongoStore(settings.mongodb_url, venue))


if __name__ == "__main__":
    sys.exit(main())
