"""The layout of the MongoDB store's documents, and the upgrade of a store written before the current one.

Layout 1: every tick and kline carries ``bucket`` (persistence.buckets). A store without the ``meta`` document
``{_id: "layout"}`` predates it: the MongoDB persister upgrades it at start, before it writes anything, and readers
(the feeds, the research service and ETL) read such a store with range queries alone until then.

The upgrade rewrites each collection into a new one and swaps it in, because FerretDB v1.24.2 finds each document
of an update by a scan of the whole table (an ``$set`` per document would take hours at a million documents) and
has no renameCollection with dropTarget. A crash at any point leaves something a second start finishes: while the
old collection exists, a new one is a cut-short copy and is made again; once the old one is gone (dropped only
after a whole copy), the new one is complete and is renamed into place.

Only one process rewrites at a time: two MongoDB persisters on one store (a misconfiguration, or a deployment
that starts the new one before the old one has stopped) would otherwise race, one dropping and renaming while the
other still copies, and could swap a cut-short copy in over the whole one. The rewriter holds a lease, the
``meta`` document ``{_id: "layout_upgrade"}`` (an insert: a duplicate key means another holds it), renewed as the
copy goes; the others wait until the layout is current. A lease not renewed for ``LEASE`` seconds (its holder was
killed) is taken over, and a holder that finds its lease taken stops before it touches anything again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from persistence.klines import Doc, kline_bucket, tick_bucket

log = logging.getLogger("mercury.persistence.mongo")

LAYOUT = 1
META = {"_id": "layout"}
COPY_BATCH = 1_000
LOCK = {"_id": "layout_upgrade"}
LEASE = 30.0  # s a rewriter's lease lasts without renewal
WAIT_POLL = 0.5  # s between a waiting persister's looks at the lease and the layout


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


class LeaseLost(RuntimeError):
    """Another process took over the upgrade (this one stalled past its lease): stop before touching the store."""


@dataclass(slots=True)
class Lease:
    """The right to rewrite the store, held in ``meta`` (wall-clock expiry: the holders are other processes)."""

    db: AsyncDatabase[Doc]
    seconds: float = LEASE
    owner: str = ""
    renewed: float = 0.0  # time.monotonic() of the last renewal

    def __post_init__(self) -> None:
        self.owner = self.owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    async def take(self) -> bool:
        """True once held; False while another holds it (a lease past its expiry is removed for the next try)."""
        try:
            await self.db.meta.insert_one(LOCK | {"owner": self.owner, "until": time.time() + self.seconds})
        except DuplicateKeyError:
            held = await self.db.meta.find_one(LOCK)
            if held is not None and held["until"] < time.time():  # its holder stopped renewing: it died
                log.warning("store layout: taking over the upgrade from %s (its lease expired)", held["owner"])
                await self.db.meta.delete_one(LOCK | {"owner": held["owner"], "until": held["until"]})
            return False
        self.renewed = time.monotonic()
        return True

    async def keep(self) -> None:
        """Renew the lease when a sixth of it has passed; LeaseLost when it is no longer this process's."""
        if time.monotonic() - self.renewed < self.seconds / 6:
            return
        renewed = await self.db.meta.update_one(LOCK | {"owner": self.owner},
                                                {"$set": {"until": time.time() + self.seconds}})  # fmt: skip
        if renewed.matched_count == 0:
            raise LeaseLost(f"store layout: the upgrade's lease of {self.owner} was taken over")
        self.renewed = time.monotonic()

    async def release(self) -> None:
        await self.db.meta.delete_one(LOCK | {"owner": self.owner})


async def upgrade(db: AsyncDatabase[Doc], lease_seconds: float = LEASE) -> None:
    """Bring the store to ``LAYOUT`` (a no-op when it is there): rewrite it under the lease, or wait while another
    process does; see the module's docstring."""
    lease = Lease(db, lease_seconds)
    while True:
        if await is_current(db):
            return
        if await lease.take():
            break
        await asyncio.sleep(WAIT_POLL)
    try:
        if await is_current(db):  # finished by the holder this process waited for
            return
        for name in ("ticks", "klines"):
            await _rewrite(db, name, with_bucket(name), lease)
        await lease.keep()
        await db.meta.replace_one(META, {"version": LAYOUT}, upsert=True)
    finally:
        await lease.release()


async def _rewrite(db: AsyncDatabase[Doc], name: str, add: Callable[[Doc], None], lease: Lease) -> None:
    names = set(await db.list_collection_names())
    new = f"{name}_layout{LAYOUT}"
    await lease.keep()
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
            await lease.keep()
            await db[new].insert_many(batch, ordered=False)
            copied += len(batch)
            batch = []
    if batch:
        await db[new].insert_many(batch, ordered=False)
        copied += len(batch)
    if copied:
        log.info("store layout %d: %d %s rewritten with their buckets", LAYOUT, copied, name)
    await lease.keep()  # the last moment another rewriter could be copying from it
    await db.drop_collection(name)
    if copied:
        await db[new].rename(name)
