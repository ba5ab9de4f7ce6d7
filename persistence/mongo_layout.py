"""The layout of the MongoDB store's documents, and the upgrade of a store written before the current one.

Layout 1: every tick and kline carries ``bucket`` (persistence.buckets). A store without the ``meta`` document
``{_id: "layout"}`` predates it: the MongoDB persister upgrades it at start, before it writes anything, and readers
(the feeds, the research service and ETL) read such a store with range queries alone until then.

The upgrade rewrites each collection into a new one and swaps it in, because FerretDB v1.24.2 finds each document
of an update by a scan of the whole table (an ``$set`` per document would take hours at a million documents) and
has no renameCollection with dropTarget. A crash at any point leaves something a second start finishes: while the
old collection exists, a new one is a cut-short copy and is made again; once the old one is gone (dropped only
after a whole copy), the new one is complete and is renamed into place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from persistence.klines import Doc, kline_bucket, tick_bucket

log = logging.getLogger("mercury.persistence.mongo")

LAYOUT = 1
META = {"_id": "layout"}
COPY_BATCH = 1_000


def with_bucket(collection: str) -> Callable[[Doc], None]:
    if collection == "ticks":
        return lambda d: d.__setitem__("bucket", tick_bucket(d["trade_id"]))
    return lambda d: d.__setitem__("bucket", kline_bucket(d["interval"], d["open_time"]))


async def is_current(db: AsyncDatabase[Doc]) -> bool:
    meta = await db.meta.find_one(META)
    return meta is not None and meta.get("version", 0) >= LAYOUT


def is_current_sync(db: Database[Doc]) -> bool:
    meta = db.meta.find_one(META)
    return meta is not None and meta.get("version", 0) >= LAYOUT


async def upgrade(db: AsyncDatabase[Doc]) -> None:
    """Bring the store to ``LAYOUT`` (a no-op when it is there); see the module's docstring."""
    if await is_current(db):
        return
    for name in ("ticks", "klines"):
        await _rewrite(db, name, with_bucket(name))
    await db.meta.replace_one(META, {"version": LAYOUT}, upsert=True)


async def _rewrite(db: AsyncDatabase[Doc], name: str, add: Callable[[Doc], None]) -> None:
    names = set(await db.list_collection_names())
    new = f"{name}_layout{LAYOUT}"
    if name not in names:
        if new in names:  # stopped between dropping the old collection and renaming the whole copy
            await db[new].rename(name)
        return
    if new in names:  # a copy cut short
        await db.drop_collection(new)
    copied = 0
    batch: list[Doc] = []
    # no filter, no sort: FerretDB streams the table
    async for doc in db[name].find({}):
        add(doc)
        batch.append(doc)
        if len(batch) >= COPY_BATCH:
            await db[new].insert_many(batch, ordered=False)
            copied += len(batch)
            batch = []
    if batch:
        await db[new].insert_many(batch, ordered=False)
        copied += len(batch)
    if copied:
        log.info("store layout %d: %d %s rewritten with their buckets", LAYOUT, copied, name)
    await db.drop_collection(name)
    if copied:
        await db[new].rename(name)
