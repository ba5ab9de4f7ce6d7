"""Reading a series of ticks or klines from the MongoDB store by bucket, so that no read grows with the history.

Why buckets: FerretDB v1.24.2 (the project's MongoDB-protocol server) hands PostgreSQL only the equality parts of
a ``find``; a range, a sort on a field and a limit with a filter are done in its own memory over every document
that matches the equalities (docs/operations.md). A "newest 500 ticks of a symbol" read therefore decoded all the
symbol's ticks: 2.8 s at 100 000 of them, measured. Every stored tick and kline carries ``bucket``, a number that
groups a bounded run of the series (``TICKS_PER_BUCKET`` consecutive trade ids, ``KLINES_PER_BUCKET`` intervals),
and a read asks for one bucket at a time by equality: about 60 ms a bucket at 100 000 stored ticks, measured, and
it stops as soon as it has what it wants. A real MongoDB serves the same queries from the persister's indexes.

A ``Scan`` is the read's plan without I/O: a generator that yields the queries to run and takes each one's
documents back (``run`` and ``run_sync`` drive it with pymongo's async and sync clients). Long silent stretches
(klines are stored only for intervals with trades) would make a walk ask for many empty buckets: after
``MAX_EMPTY`` empty ones in a row it asks for the rest of the range in one range query instead, which is correct
and costs what every read cost before buckets. A store whose documents predate buckets (``LAYOUT`` not reached,
see persistence.mongo_layout) is read with that range query alone.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.collection import Collection

from persistence.klines import KLINES_PER_BUCKET, TICKS_PER_BUCKET, kline_bucket, kline_step, tick_bucket

__all__ = ["KLINES_PER_BUCKET", "TICKS_PER_BUCKET", "Query", "Scan", "kline_bucket", "kline_step", "klines", "run",
           "run_sync", "tick_bucket", "ticks"]  # fmt: skip

Doc = dict[str, Any]

MAX_EMPTY = 8  # empty buckets in a row after which the rest of a walk is one range query


@dataclass(frozen=True, slots=True)
class Query:
    filter: Doc
    sort: list[tuple[str, int]] | None = None
    limit: int = 0


Plan = Generator[Query, list[Doc], list[Doc]]


@dataclass(slots=True)
class Scan:
    """The documents of one series (``base``: its equality fields) whose ``key`` is in [lo, hi], in key order
    (newest first when ``descending``) and for which ``keep`` holds, at most ``limit`` of them (0: all); ``stop``
    ends the walk at the first document (in walk order) it holds true for, without that document. ``step`` is the
    key span of a bucket; ``bucketed`` false reads the whole range in one query (a store without buckets)."""

    base: Doc
    key: str
    step: int
    lo: int
    hi: int
    descending: bool = False
    limit: int = 0
    stop: Callable[[Doc], bool] | None = None
    keep: Callable[[Doc], bool] | None = None
    bucketed: bool = True

    def plan(self) -> Plan:
        out: list[Doc] = []
        if self.lo > self.hi or self.lo < 0:
            return out
        if not self.bucketed:
            docs = yield self._range(self.lo, self.hi, 0)
            self._take(docs, out)
            return out
        first, last = self.lo // self.step, self.hi // self.step
        order = range(last, first - 1, -1) if self.descending else range(first, last + 1)
        empty = 0
        for i, bucket in enumerate(order):
            docs = yield Query(self.base | {"bucket": bucket})
            empty = 0 if docs else empty + 1
            docs.sort(key=self._order, reverse=self.descending)
            if self._take(docs, out):
                return out
            if empty >= MAX_EMPTY and len(order) - i - 1 > MAX_EMPTY:
                # a long silent stretch: the rest in one query rather than one per bucket
                rest = (self.lo, bucket * self.step - 1) if self.descending else ((bucket + 1) * self.step, self.hi)
                docs = yield self._range(*rest, len(out))
                self._take(docs, out)
                return out
        return out

    def _order(self, doc: Doc) -> int:
        return int(doc[self.key])

    def _range(self, lo: int, hi: int, have: int) -> Query:
        # a document that is not kept does not count, so only a plain walk can let the server cut it short
        limit = self.limit - have if self.limit and self.stop is None and self.keep is None else 0
        sort = [(self.key, -1 if self.descending else 1)]
        return Query(self.base | {self.key: {"$gte": lo, "$lte": hi}}, sort, limit)

    def _take(self, docs: list[Doc], out: list[Doc]) -> bool:
        """Append the documents in range; True once the scan is complete."""
        lo, hi, key, stop, keep, limit = self.lo, self.hi, self.key, self.stop, self.keep, self.limit
        for d in docs:
            if not lo <= d[key] <= hi or (keep is not None and not keep(d)):
                continue
            if stop is not None and stop(d):
                return True
            out.append(d)
            if limit and len(out) >= limit:
                return True
        return False


async def run(collection: AsyncCollection[Doc], scan: Scan) -> list[Doc]:
    plan = scan.plan()
    try:
        q = next(plan)
        while True:
            q = plan.send(await collection.find(q.filter, sort=q.sort, limit=q.limit).to_list())
    except StopIteration as done:
        result: list[Doc] = done.value
        return result


def run_sync(collection: Collection[Doc], scan: Scan) -> list[Doc]:
    plan = scan.plan()
    try:
        q = next(plan)
        while True:
            q = plan.send(list(collection.find(q.filter, sort=q.sort, limit=q.limit)))
    except StopIteration as done:
        result: list[Doc] = done.value
        return result


def ticks(symbol: str, lo: int, hi: int, *, descending: bool = False, limit: int = 0,
          stop: Callable[[Doc], bool] | None = None, keep: Callable[[Doc], bool] | None = None,
          bucketed: bool = True) -> Scan:  # fmt: skip
    """A symbol's ticks with trade ids in [lo, hi]."""
    return Scan({"symbol": symbol}, "trade_id", TICKS_PER_BUCKET, lo, hi, descending, limit, stop, keep, bucketed)


def klines(symbol: str, interval: str, lo: int, hi: int, *, descending: bool = False, limit: int = 0,
           bucketed: bool = True) -> Scan:  # fmt: skip
    """A series' stored klines opened in [lo, hi] (ns)."""
    base = {"symbol": symbol, "interval": interval}
    return Scan(base, "open_time", kline_step(interval), lo, hi, descending, limit, None, None, bucketed)
