"""What the feed reads from the MongoDB store (persistence.mongo): the history it starts from, and candles or trades
older than what it holds in memory.

At start the feed waits (bounded) until the MongoDB persister has stored everything up to the feed's snapshot, then
takes from it each symbol's open candles as of that snapshot, the day's closed 1m candles (for the rolling 24-hour
ticker) and the last trades. The store keeps the 1s, 1m, 5m, 15m, 1h and 1d intervals; 3m, 30m and 4h are merged
from 1m, 15m and 1h.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from feeds.candles import DAY_MINUTES, MINUTE
from feeds.market import KEEP_TRADES, Market
from persistence import buckets
from persistence.klines import SECOND, WIDTH, Kline
from persistence.mongo import CONSUMER, stored_open_klines
from persistence.mongo_layout import is_current
from persistence.stream import Registry
from wire.enums import Side
from wire.events import TradeExecuted

log = logging.getLogger("mercury.feed.history")

Doc = dict[str, Any]
DERIVED = {"3m": "1m", "30m": "15m", "4h": "1h"}  # interval -> the stored one it is merged from
STORE_WAIT = 10.0  # s the feed waits at start for the MongoDB persister to reach its snapshot


class MarketHistory:
    def __init__(self, url: str, registry: Registry) -> None:
        self.client: AsyncMongoClient[Doc] = AsyncMongoClient(url, serverSelectionTimeoutMS=2_000,
                                                              socketTimeoutMS=10_000)  # fmt: skip
        self.db: AsyncDatabase[Doc] = self.client.get_default_database("mercury")
        self.registry = registry
        self.bucketed = False  # the store's documents carry buckets (persistence.mongo_layout): known once true

    async def _bucketed(self) -> bool:
        if not self.bucketed:
            self.bucketed = await is_current(self.db)
        return self.bucketed

    async def close(self) -> None:
        await self.client.close()

    async def seed(self, market: Market) -> None:
        """Candles and recent trades of every symbol as of ``market.out_seq``; without the store, none."""
        out_seq = market.out_seq
        deadline = time.monotonic() + STORE_WAIT
        while (await self.registry.offsets()).get(CONSUMER, 0) < out_seq:
            if time.monotonic() > deadline:
                log.warning("the MongoDB persister has not reached out_seq %d: history may miss recent trades",
                            out_seq)  # fmt: skip
                break
            await asyncio.sleep(0.1)
        try:
            bucketed = await self._bucketed()
            for symbol, m in market.symbols.items():
                opens = await stored_open_klines(self.db, symbol, m.trade_id, bucketed)
                by_interval = {k.interval: k for k in opens}
                for interval, base in DERIVED.items():
                    if base in by_interval:
                        by_interval[interval] = await self._derived_open(symbol, interval, by_interval[base])
                minute = by_interval.get("1m")
                closed_1m: list[Kline] = []
                before = m.candles.before_memory
                if minute is not None:
                    start = minute.open_time - DAY_MINUTES * MINUTE  # one more than a day: the price before it
                    closed_1m = await self.stored(symbol, "1m", start, minute.open_time - 1)
                    before = await self.close_before(symbol, "1m", closed_1m[0].open_time if closed_1m else start)
                m.candles.seed(by_interval.values(), closed_1m, before)
                recent = buckets.ticks(symbol, max(1, m.trade_id - KEEP_TRADES + 1), m.trade_id, bucketed=bucketed)
                m.trades.extend(trade_of(t) for t in await buckets.run(self.db.ticks, recent))
        except PyMongoError as exc:
            log.warning("no history from MongoDB (%s): candles and trades start empty", exc)

    async def _derived_open(self, symbol: str, interval: str, base_open: Kline) -> Kline:
        width = WIDTH[interval]
        start = base_open.open_time - base_open.open_time % width
        k = Kline.empty(symbol, interval, start)
        for part in await self.stored(symbol, DERIVED[interval], start, base_open.open_time - 1):
            k.merge(part)
        k.merge(base_open)
        return k

    async def _scan(self, collection: str, scan: buckets.Scan) -> list[Doc]:
        """A scan's documents; none (and a warning) while the store is unreachable: the REST endpoints then answer
        from memory alone rather than fail."""
        try:
            scan.bucketed = scan.bucketed and await self._bucketed()
            return await buckets.run(self.db[collection], scan)
        except PyMongoError as exc:
            log.warning("MongoDB unreachable (%s): answering from memory", type(exc).__name__)
            return []

    async def stored(self, symbol: str, interval: str, start: int, end: int) -> list[Kline]:
        """Closed candles of ``interval`` opened in [start, end] (ns), oldest first; a derived interval is merged
        from its base interval's candles."""
        base = DERIVED.get(interval, interval)
        docs = await self._scan("klines", buckets.klines(symbol, base, start, end))
        if base == interval:
            return [Kline.from_doc(d) for d in docs]
        width = WIDTH[interval]
        merged: dict[int, Kline] = {}
        for d in docs:
            part = Kline.from_doc(d)
            t = part.open_time - part.open_time % width
            k = merged.get(t)
            if k is None:
                k = merged[t] = Kline.empty(symbol, interval, t)
            k.merge(part)
        return list(merged.values())

    async def close_before(self, symbol: str, interval: str, t: int) -> int:
        """The close of the last stored candle of ``interval``'s base opened before ``t`` (0: none)."""
        before = buckets.klines(symbol, DERIVED.get(interval, interval), 0, t - 1, descending=True, limit=1)
        docs = await self._scan("klines", before)
        return int(docs[0]["close"]) if docs else 0

    async def first_open(self, symbol: str, interval: str, start: int, end: int) -> int | None:
        """The open time of the first stored candle of ``interval``'s base opened in [start, end] (None: none)."""
        docs = await self._scan("klines", buckets.klines(symbol, DERIVED.get(interval, interval), start, end, limit=1))
        return int(docs[0]["open_time"]) if docs else None

    async def trades(self, symbol: str, from_id: int | None, start: int | None, end: int | None, limit: int,
                     last_id: int) -> list[TradeExecuted]:  # fmt: skip
        """Stored trades from id ``from_id``, or stamped in [start, end] (ns), oldest first, at most ``limit``, none
        after ``last_id`` (the symbol's last trade). A time finds its first trade id in the stored 1s candles."""
        early = 0 if start is None else start
        late = 1 << 62 if end is None else end
        bucketed = True
        if from_id is None:
            first = await self._scan("klines", buckets.klines(symbol, "1s", early - early % SECOND, late, limit=1))
            # none: the window's candles are not stored yet (its second is still open), or none had trades
            from_id, bucketed = (int(first[0]["first_trade_id"]), True) if first else (1, False)
        scan = buckets.ticks(symbol, max(1, from_id), last_id, limit=limit, keep=lambda t: t["ts"] >= early,
                             stop=lambda t: t["ts"] > late, bucketed=bucketed)  # fmt: skip
        return [trade_of(d) for d in await self._scan("ticks", scan)]


def trade_of(tick: Doc) -> TradeExecuted:
    """A stored tick as a trade event. The store keeps no order ids, so each gets its own negative command number:
    stored trades are never merged into one aggregate trade (feeds.payloads.aggregate)."""
    return TradeExecuted(tick["out_seq"], -tick["trade_id"], tick["ts"], tick["symbol"], tick["trade_id"],
                         tick["price"], tick["qty"], Side[tick["taker_side"]], 0, 0, 0, 0, 0, 0)  # fmt: skip
