"""engine.book on its own: price ladder order, FIFO levels, indexes, and check_invariants catching corruption."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.book import Book, Order
from tests.stubs import BUY, GTC, LIMIT, SELL, SYM
from wire.enums import Side


def order(order_id: int, side: Side, price: int, leaves: int, *, account: int = 1, client_oid: str = "") -> Order:
    return Order(order_id, account, side, price, leaves, client_oid, LIMIT, GTC)


def fifo(book: Book, side: Side) -> list[tuple[int, list[tuple[int, int]]]]:
    return [(lvl.price, [(o.order_id, o.leaves) for o in lvl]) for lvl in book.side(side).iter_levels()]


def filled_book() -> Book:
    """Bids 99 (1, 2), 98 (3); asks 101 (4), 102 (5, 6); built in an order that is not price order."""
    book = Book(SYM)
    book.add(order(1, BUY, 99, 10, account=1, client_oid="a"))
    book.add(order(3, BUY, 98, 30, account=2))
    book.add(order(4, SELL, 101, 40, account=1))
    book.add(order(5, SELL, 102, 50, account=2, client_oid="a"))
    book.add(order(2, BUY, 99, 20, account=2))
    book.add(order(6, SELL, 102, 60, account=1, client_oid="b"))
    book.check_invariants()
    return book


def test_add_when_prices_differ_orders_levels_from_the_best_price_outwards() -> None:
    book = Book(SYM)
    for i, price in enumerate([98, 101, 99, 97], start=1):
        book.add(order(i, BUY, price, 1))
    for i, price in enumerate([103, 105, 102, 104], start=5):
        book.add(order(i, SELL, price, 1))

    assert [lvl.price for lvl in book.bids.iter_levels()] == [101, 99, 98, 97]
    assert [lvl.price for lvl in book.asks.iter_levels()] == [102, 103, 104, 105]
    best_bid, best_ask = book.bids.best(), book.asks.best()
    assert best_bid is not None and best_bid.price == 101
    assert best_ask is not None and best_ask.price == 102


def test_best_when_side_is_empty_is_none() -> None:
    book = Book(SYM)

    assert book.bids.best() is None
    assert book.asks.best() is None


def test_add_when_price_repeats_queues_in_arrival_order_with_level_totals() -> None:
    book = filled_book()

    assert fifo(book, BUY) == [(99, [(1, 10), (2, 20)]), (98, [(3, 30)])]
    assert fifo(book, SELL) == [(101, [(4, 40)]), (102, [(5, 50), (6, 60)])]
    assert [(lvl.price, lvl.total, lvl.count) for lvl in book.asks.iter_levels()] == [(101, 40, 1), (102, 110, 2)]


def test_add_indexes_orders_by_id_account_and_client_order_id() -> None:
    book = filled_book()

    assert sorted(book.orders) == [1, 2, 3, 4, 5, 6]
    assert {acct: sorted(m) for acct, m in book.by_account.items()} == {1: [1, 4, 6], 2: [2, 3, 5]}
    assert {k: o.order_id for k, o in book.by_client_oid.items()} == {(1, "a"): 1, (2, "a"): 5, (1, "b"): 6}


@pytest.mark.parametrize(
    ("order_id", "bids", "asks"),
    [
        (1, [(99, [(2, 20)]), (98, [(3, 30)])], [(101, [(4, 40)]), (102, [(5, 50), (6, 60)])]),
        (6, [(99, [(1, 10), (2, 20)]), (98, [(3, 30)])], [(101, [(4, 40)]), (102, [(5, 50)])]),
        (4, [(99, [(1, 10), (2, 20)]), (98, [(3, 30)])], [(102, [(5, 50), (6, 60)])]),
        (3, [(99, [(1, 10), (2, 20)])], [(101, [(4, 40)]), (102, [(5, 50), (6, 60)])]),
    ],
    ids=["head-of-level", "tail-of-level", "last-at-touch", "last-behind-touch"],
)
def test_remove_relinks_the_level_and_drops_it_when_empty(
    order_id: int, bids: list[tuple[int, list[tuple[int, int]]]], asks: list[tuple[int, list[tuple[int, int]]]]
) -> None:
    book = filled_book()
    target = book.orders[order_id]

    level = book.remove(target)

    book.check_invariants()
    assert level.price == target.price
    assert fifo(book, BUY) == bids
    assert fifo(book, SELL) == asks
    assert order_id not in book.orders
    assert all(order_id not in m for m in book.by_account.values())
    assert target.level is None and target.prev is None and target.next is None


def test_remove_of_the_middle_order_links_its_neighbours() -> None:
    book = Book(SYM)
    for i in (1, 2, 3):
        book.add(order(i, SELL, 100, i))

    book.remove(book.orders[2])

    book.check_invariants()
    first, last = book.orders[1], book.orders[3]
    assert first.next is last and last.prev is first
    assert fifo(book, SELL) == [(100, [(1, 1), (3, 3)])]


def test_remove_of_an_accounts_last_order_drops_its_account_and_client_order_id_entries() -> None:
    book = filled_book()

    for order_id in (2, 3, 5):
        book.remove(book.orders[order_id])

    book.check_invariants()
    assert set(book.by_account) == {1}
    assert set(book.by_client_oid) == {(1, "a"), (1, "b")}


def test_reduce_keeps_queue_position_and_lowers_the_level_total() -> None:
    book = filled_book()

    book.reduce(book.orders[5], 7)

    book.check_invariants()
    assert fifo(book, SELL) == [(101, [(4, 40)]), (102, [(5, 7), (6, 60)])]
    best = book.asks.best()
    assert best is not None and best.price == 101
    assert [lvl.total for lvl in book.asks.iter_levels()] == [40, 67]


@pytest.mark.parametrize(
    ("order_id", "new_oid", "expected"),
    [
        (1, "z", {(1, "z"): 1, (2, "a"): 5, (1, "b"): 6}),
        (1, "", {(2, "a"): 5, (1, "b"): 6}),
        (2, "y", {(1, "a"): 1, (2, "a"): 5, (1, "b"): 6, (2, "y"): 2}),
    ],
    ids=["rename", "clear", "name-an-unnamed-order"],
)
def test_rename_moves_the_client_order_id_index(
    order_id: int, new_oid: str, expected: dict[tuple[int, str], int]
) -> None:
    book = filled_book()

    book.rename(book.orders[order_id], new_oid)

    book.check_invariants()
    assert book.orders[order_id].client_oid == new_oid
    assert {k: o.order_id for k, o in book.by_client_oid.items()} == expected


# ---- check_invariants catches corruption ----------------------------------------------------------------------


def _crossed(book: Book) -> None:
    book.add(order(7, BUY, 101, 1))


def _total_drift(book: Book) -> None:
    level = book.bids.best()
    assert level is not None
    level.total += 1


def _fifo_out_of_id_order(book: Book) -> None:
    book.add(order(0, SELL, 102, 1))


def _nothing_open(book: Book) -> None:
    book.orders[4].leaves = 0
    level = book.asks.best()
    assert level is not None
    level.total -= 40


def _missing_from_id_index(book: Book) -> None:
    del book.orders[3]


def _stale_id_index(book: Book) -> None:
    book.orders[99] = order(99, BUY, 50, 1)


def _stale_account_index(book: Book) -> None:
    book.by_account[2][3] = order(3, BUY, 98, 30, account=2)  # a copy, not the resting order


def _stale_client_oid_index(book: Book) -> None:
    book.by_client_oid[(9, "q")] = book.orders[3]


def _unsorted_keys(book: Book) -> None:
    book.bids.keys.reverse()


def _order_on_wrong_level(book: Book) -> None:
    book.orders[3].price = 97


def _broken_link(book: Book) -> None:
    book.orders[2].prev = None


def _empty_level(book: Book) -> None:
    level = book.bids.level_for(50)
    assert level.count == 0


@pytest.mark.parametrize(
    "corrupt",
    [
        _crossed,
        _total_drift,
        _fifo_out_of_id_order,
        _nothing_open,
        _missing_from_id_index,
        _stale_id_index,
        _stale_account_index,
        _stale_client_oid_index,
        _unsorted_keys,
        _order_on_wrong_level,
        _broken_link,
        _empty_level,
    ],
)
def test_check_invariants_when_book_is_corrupt_raises_assertion_error(corrupt: Callable[[Book], None]) -> None:
    book = filled_book()
    corrupt(book)

    with pytest.raises(AssertionError):
        book.check_invariants()
