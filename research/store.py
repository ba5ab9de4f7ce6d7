"""What the research tools read of the MongoDB persister's store besides its documents: how far it has stored.

The persister's offset (``consumer_offsets``) holds its clock and each symbol's last trade id; with the store in
the bucket layout (persistence.mongo_layout), a reader walks the series by bucket up to that cut
(persistence.buckets), so a read costs what it wants, not what is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pymongo

from persistence.mongo import CONSUMER
from persistence.mongo_layout import is_current_sync

Db = pymongo.database.Database[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Cut:
    """The persister's offset: ``ts`` its clock (ns; klines closed by then are stored), ``trade_ids`` each symbol's
    last stored trade."""

    ts: int
    trade_ids: dict[str, int]


def store_cut(db: Db) -> Cut | None:
    """The cut to read by bucket up to; None: read by range queries (a store from before buckets, or an offset
    written before offsets kept their trade ids, or none yet)."""
    offset = db.consumer_offsets.find_one({"_id": CONSUMER})
    if offset is None or "trade_ids" not in offset or not is_current_sync(db):
        return None
    return Cut(int(offset["ts"]), {s: int(t) for s, t in offset["trade_ids"].items()})
