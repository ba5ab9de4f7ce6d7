"""A reference client that keeps a local order book from a depth snapshot and diff stream, exactly as Binance documents
for spot ("How to manage a local order book correctly"), and checks Mercury's book checksum after every diff.

    async for book in follow_book("ws://127.0.0.1:8091", "http://127.0.0.1:8090", "BTCUSDT"):
        print(book.update_id, book.best())

The procedure:

1. open ``/ws/<symbol>@depth@100ms`` (any depth stream) and buffer its events;
2. fetch ``/api/v3/depth?limit=5000``; if its ``lastUpdateId`` is below the first buffered event's ``U``, fetch again;
3. drop buffered events with ``u <= lastUpdateId``; the first one left must have ``U <= lastUpdateId + 1 <= u``;
4. apply events in order, each ``U`` being the previous ``u + 1``; a quantity of "0" removes the level;
5. an event that does not follow (a gap), or a checksum that differs, means the local book is wrong: start again.

Prices and quantities are kept as the strings the feed sent, so that the checksum is computed over the same text.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
import zlib
from collections.abc import AsyncGenerator
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import connect

CHECKSUM_LEVELS = 10


class BookOutOfSync(Exception):
    """The diff stream skipped an update, or the checksum disagrees: the local book must be rebuilt."""


class LocalBook:
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.update_id = 0
        self.bids: dict[str, str] = {}  # price text -> quantity text
        self.asks: dict[str, str] = {}
        self.synced = False  # the first event after the snapshot was applied

    def load(self, snapshot: dict[str, Any]) -> None:
        self.update_id = int(snapshot["lastUpdateId"])
        self.bids = {p: q for p, q in snapshot["bids"]}
        self.asks = {p: q for p, q in snapshot["asks"]}
        self.synced = False

    def apply(self, event: dict[str, Any]) -> bool:
        """Apply one diff; False if it is older than the book (ignored). Raises BookOutOfSync on a gap or a bad
        checksum."""
        first, last = int(event["U"]), int(event["u"])
        if last <= self.update_id:
            return False
        if self.synced:
            if first != self.update_id + 1:
                raise BookOutOfSync(f"{self.symbol}: update {first} after {self.update_id}")
        elif not first <= self.update_id + 1 <= last:
            raise BookOutOfSync(f"{self.symbol}: the first diff [{first}, {last}] misses {self.update_id + 1}")
        for side, levels in ((self.bids, event["b"]), (self.asks, event["a"])):
            for price, qty in levels:
                if Decimal(qty) == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        self.update_id = last
        self.synced = True
        if "cs" in event and event["cs"] != self.checksum():
            raise BookOutOfSync(f"{self.symbol}: checksum {self.checksum()} after {last}, the feed's {event['cs']}")
        return True

    def top(self, depth: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = sorted(self.bids.items(), key=lambda level: Decimal(level[0]), reverse=True)[:depth]
        asks = sorted(self.asks.items(), key=lambda level: Decimal(level[0]))[:depth]
        return bids, asks

    def best(self) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
        bids, asks = self.top(1)
        return (bids[0] if bids else None), (asks[0] if asks else None)

    def checksum(self) -> int:
        """CRC32 of ``bidPrice:bidQty:askPrice:askQty:...`` over the top 10 levels, interleaved best first."""
        bids, asks = self.top(CHECKSUM_LEVELS)
        parts: list[str] = []
        for i in range(max(len(bids), len(asks))):
            if i < len(bids):
                parts += bids[i]
            if i < len(asks):
                parts += asks[i]
        return zlib.crc32(":".join(parts).encode())


def fetch_snapshot(rest_url: str, symbol: str, limit: int = 5000) -> dict[str, Any]:
    with urllib.request.urlopen(f"{rest_url}/api/v3/depth?symbol={symbol}&limit={limit}", timeout=10) as response:
        return dict(json.loads(response.read()))


async def follow_book(ws_url: str, rest_url: str, symbol: str, stream: str = "depth@100ms",
                      max_restarts: int = 3) -> AsyncGenerator[LocalBook, None]:  # fmt: skip
    """Yield the local book after every applied diff, for ever; rebuild it on a gap (at most ``max_restarts``
    times in a row before giving up with BookOutOfSync)."""
    restarts = 0
    async with connect(f"{ws_url}/ws/{symbol.lower()}@{stream}", max_queue=None) as ws:
        while True:
            book = LocalBook(symbol)
            buffered: list[dict[str, Any]] = []
            buffered.append(json.loads(await ws.recv()))  # the first event: its U bounds the snapshot
            while True:
                snapshot = await asyncio.to_thread(fetch_snapshot, rest_url, symbol)
                if snapshot["lastUpdateId"] >= buffered[0]["U"]:
                    break
                while True:  # gather what arrived meanwhile
                    try:
                        buffered.append(json.loads(await asyncio.wait_for(ws.recv(), 0.001)))
                    except TimeoutError:
                        break
            book.load(snapshot)
            try:
                while True:
                    event = buffered.pop(0) if buffered else json.loads(await ws.recv())
                    if book.apply(event):
                        restarts = 0
                        yield book
            except BookOutOfSync:
                restarts += 1
                if restarts > max_restarts:
                    raise
