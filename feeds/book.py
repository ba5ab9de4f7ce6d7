"""One symbol's order book as price levels (the engine's ``BookDelta`` totals), numbered by the engine's own update ids.

The feed never sees orders, only each level's new total: that is all a depth stream, a depth snapshot or a book
ticker needs, and it keeps the book small. Levels live in sorted dicts keyed so that iteration starts at the best
price (bids by negated price), which makes the top N levels a slice instead of a sort.
"""

from __future__ import annotations

import zlib

from sortedcontainers import SortedDict

from wire.enums import Side

CHECKSUM_LEVELS = 10  # levels per side the depth checksum covers (docs/api.md, "Book checksum")

Level = tuple[int, int]  # (price in ticks, quantity in lots)


class LevelBook:
    __slots__ = ("asks", "bids", "update_id")

    def __init__(self, update_id: int = 0) -> None:
        self.bids: SortedDict[int, int] = SortedDict()  # -price -> qty
        self.asks: SortedDict[int, int] = SortedDict()  # price -> qty
        self.update_id = update_id  # the engine's id of the last change applied

    def set(self, side: Side, price: int, qty: int) -> None:
        levels, key = (self.bids, -price) if side is Side.BUY else (self.asks, price)
        if qty:
            levels[key] = qty
        else:
            levels.pop(key, None)

    def top(self, depth: int) -> tuple[list[Level], list[Level]]:
        bids = [(-k, self.bids[k]) for k in self.bids.islice(0, depth)]
        asks = [(k, self.asks[k]) for k in self.asks.islice(0, depth)]
        return bids, asks

    def best(self) -> tuple[Level | None, Level | None]:
        bid = (-self.bids.peekitem(0)[0], self.bids.peekitem(0)[1]) if self.bids else None
        ask = self.asks.peekitem(0) if self.asks else None
        return bid, ask

    def levels(self) -> dict[tuple[Side, int], int]:
        """Every level, keyed by (side, price): what a rebuild compares to tell clients what changed."""
        out = {(Side.BUY, -k): q for k, q in self.bids.items()}
        out.update(((Side.SELL, k), q) for k, q in self.asks.items())
        return out


def checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """CRC32 of the top levels as sent: ``bidPrice:bidQty:askPrice:askQty:...`` interleaved best first, a side that
    runs out simply stops contributing (OKX's layout, over Mercury's decimal strings). Unsigned 32 bits."""
    parts: list[str] = []
    append = parts.append
    for i in range(max(len(bids), len(asks))):
        if i < len(bids):
            append(bids[i][0])
            append(bids[i][1])
        if i < len(asks):
            append(asks[i][0])
            append(asks[i][1])
    return zlib.crc32(":".join(parts).encode())
