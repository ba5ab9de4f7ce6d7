"""One symbol's order book: resting orders by price level, in time order within a level.

Book layout
    Each side keeps ``levels`` (price -> Level) and ``keys``, a list of the level prices sorted so that the best
    price is the *last* element (asks store ``-price``, bids ``price``). The best price is ``keys[-1]``: no scan.
    A new or emptied level costs a binary search plus a memmove of the keys between it and the touch, which is
    short for the near-touch orders that dominate real flow and never depends on the number of resting orders.
    Each Level is an intrusive doubly linked FIFO of Orders (``prev``/``next``), and ``orders`` maps order id to
    Order, so a cancel by id is O(1): no search inside the level.

Ordering invariant (price-time priority)
    A taker always meets the best price first and, within a price, the oldest order first. Order ids grow with
    acceptance time, so within a level the FIFO is also ascending order id (tests check it).

Amend semantics
    Lowering an order's open quantity at the same price keeps its place (``reduce``). Any other change is a
    remove plus a new order at the back of its level, with a new id (the matching module decides which).

This module changes state only; it emits no events and moves no money (orders only point at their balances).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from wire.enums import OrderType, SelfTradeMode, Side, TimeInForce

if TYPE_CHECKING:
    from engine.accounts import Balance

BUY: Final = Side.BUY  # a module global: reading an enum member off its class (Side.BUY) is ~10x slower on the hot path


class Order:
    prev: Order | None
    next: Order | None
    level: Level | None
    __slots__ = (
        "account",
        "client_oid",
        "gain",
        "hold",
        "leaves",
        "level",
        "next",
        "order_id",
        "prev",
        "price",
        "side",
        "stp",
        "tif",
        "type",
    )

    def __init__(
        self,
        order_id: int,
        account: int,
        side: Side,
        price: int,
        leaves: int,
        client_oid: str,
        type: OrderType,
        tif: TimeInForce,
        stp: SelfTradeMode = SelfTradeMode.EXPIRE_TAKER,
        hold: Balance | None = None,
        gain: Balance | None = None,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.side = side
        self.price = price
        self.leaves = leaves
        self.client_oid = client_oid
        self.type = type
        self.tif = tif
        self.stp = stp  # kept for a cancel-replace that re-enters the order
        # the owner's balances this order spends from (its lock) and receives into; None when risk is off
        self.hold = hold
        self.gain = gain
        # prev, next and level are set by Level.append, which every order goes through before anything reads them


class Level:
    """The FIFO of orders resting at one price on one side, with their total open quantity."""

    __slots__ = ("count", "head", "price", "tail", "total")

    def __init__(self, price: int) -> None:
        self.price = price
        self.total = 0
        self.count = 0
        self.head: Order | None = None
        self.tail: Order | None = None

    def __iter__(self) -> Iterator[Order]:
        order = self.head
        while order is not None:
            yield order
            order = order.next


class BookSide:
    __slots__ = ("keys", "levels", "side", "sign")

    def __init__(self, side: Side) -> None:
        self.side = side
        # key = sign * price, so that the best price of either side is the largest key
        self.sign = 1 if side is Side.BUY else -1
        self.levels: dict[int, Level] = {}
        self.keys: list[int] = []

    def best(self) -> Level | None:
        keys = self.keys
        if not keys:
            return None
        return self.levels[keys[-1] * self.sign]

    def level_for(self, price: int) -> Level:
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = Level(price)
            insort(self.keys, price * self.sign)
        return level

    def drop_level(self, level: Level) -> None:
        price = level.price
        del self.levels[price]
        keys = self.keys
        key = price * self.sign
        if keys[-1] == key:  # the common case: the touch level emptied by a taker or a cancel
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]

    def iter_levels(self) -> Iterator[Level]:
        """Levels from the best price outwards."""
        levels, sign = self.levels, self.sign
        for key in reversed(self.keys):
            yield levels[key * sign]


class Book:
    """Resting orders of one symbol, plus the indexes the engine needs: by id, by account, by client order id."""

    __slots__ = ("asks", "bids", "by_account", "by_client_oid", "orders", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids = BookSide(Side.BUY)
        self.asks = BookSide(Side.SELL)
        self.orders: dict[int, Order] = {}
        self.by_account: dict[int, dict[int, Order]] = {}
        self.by_client_oid: dict[tuple[int, str], Order] = {}

    def side(self, side: Side) -> BookSide:
        return self.bids if side is Side.BUY else self.asks

    def add(self, order: Order) -> Level:
        """Rest an order at the back of its price level; returns the level."""
        book_side = self.bids if order.side is BUY else self.asks
        level = book_side.levels.get(order.price)  # most orders join an existing level: skip the call
        if level is None:
            level = book_side.level_for(order.price)
        # append to the level's FIFO (inline: half of all commands come here)
        tail = level.tail
        order.prev = tail
        order.next = None
        if tail is None:
            level.head = order
        else:
            tail.next = order
        level.tail = order
        order.level = level
        level.total += order.leaves
        level.count += 1
        self.orders[order.order_id] = order
        mine = self.by_account.get(order.account)
        if mine is None:
            mine = self.by_account[order.account] = {}
        mine[order.order_id] = order
        if order.client_oid:
            self.by_client_oid[(order.account, order.client_oid)] = order
        return level

    def remove(self, order: Order) -> Level:
        """Take an order out of the book (cancel, full fill, replace); returns the level it was in."""
        level = order.level
        assert level is not None, "order is not resting"
        # unlink from the level's FIFO (inline, as in add)
        prev, nxt = order.prev, order.next
        if prev is None:
            level.head = nxt
        else:
            prev.next = nxt
        if nxt is None:
            level.tail = prev
        else:
            nxt.prev = prev
        order.prev = order.next = None
        order.level = None
        level.total -= order.leaves
        level.count -= 1
        if level.count == 0:
            (self.bids if order.side is BUY else self.asks).drop_level(level)
        del self.orders[order.order_id]
        mine = self.by_account[order.account]
        del mine[order.order_id]
        if not mine:
            del self.by_account[order.account]
        if order.client_oid:
            del self.by_client_oid[(order.account, order.client_oid)]
        return level

    def reduce(self, order: Order, new_leaves: int) -> None:
        """Lower an order's open quantity in place: it keeps its queue position."""
        level = order.level
        assert level is not None and 0 < new_leaves <= order.leaves
        level.total -= order.leaves - new_leaves
        order.leaves = new_leaves

    def rename(self, order: Order, client_oid: str) -> None:
        if order.client_oid:
            del self.by_client_oid[(order.account, order.client_oid)]
        order.client_oid = client_oid
        if client_oid:
            self.by_client_oid[(order.account, client_oid)] = order

    def check_invariants(self) -> None:
        """Raise AssertionError if the book is inconsistent. Tests call it after every command."""
        seen: set[int] = set()
        for book_side in (self.bids, self.asks):
            assert book_side.keys == sorted(book_side.keys), "price keys unsorted"
            assert len(set(book_side.keys)) == len(book_side.keys), "duplicate price key"
            assert {k * book_side.sign for k in book_side.keys} == set(book_side.levels), "keys != levels"
            for price, level in book_side.levels.items():
                assert level.price == price and level.count > 0, "empty or misfiled level"
                total, count, last_id, prev = 0, 0, -1, None
                for order in level:
                    assert order.prev is prev and order.level is level, "broken links"
                    assert order.side is book_side.side and order.price == price, "order on the wrong level"
                    assert order.leaves > 0, "resting order with nothing open"
                    assert order.order_id > last_id, "FIFO out of time order"
                    assert self.orders.get(order.order_id) is order, "order missing from the id index"
                    assert self.by_account[order.account][order.order_id] is order, "order missing by account"
                    if order.client_oid:
                        assert self.by_client_oid[(order.account, order.client_oid)] is order
                    last_id, prev = order.order_id, order
                    total += order.leaves
                    count += 1
                    seen.add(order.order_id)
                assert level.tail is prev, "tail is not the last order"
                assert level.total == total and level.count == count, "level totals drifted"
        assert seen == set(self.orders), "id index holds orders not in the book"
        assert sum(len(m) for m in self.by_account.values()) == len(self.orders), "account index drifted"
        assert len(self.by_client_oid) == sum(1 for o in self.orders.values() if o.client_oid)
        best_bid, best_ask = self.bids.best(), self.asks.best()
        if best_bid is not None and best_ask is not None:
            assert best_bid.price < best_ask.price, "book is crossed"
