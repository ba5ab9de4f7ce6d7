"""The level book and Mercury's book checksum: the feed's and the reference client's agree, over any book."""

from __future__ import annotations

import zlib

from hypothesis import given
from hypothesis import strategies as st

from client.marketbook import BookOutOfSync, LocalBook
from feeds.book import LevelBook, checksum
from feeds.payloads import texts_for
from wire.enums import Side
from wire.venue import DEFAULT_VENUE, load_venue

VENUE = load_venue(DEFAULT_VENUE)
TEXTS = texts_for(VENUE)["BTCUSDT"]


def test_the_checksum_interleaves_the_top_levels_best_first_as_documented() -> None:
    bids = [("100.01", "0.5"), ("100.00", "1.25")]
    asks = [("100.02", "0.1")]
    assert checksum(bids, asks) == zlib.crc32(b"100.01:0.5:100.02:0.1:100.00:1.25")
    assert checksum([], []) == zlib.crc32(b"")


def test_the_level_book_keeps_the_best_first_and_forgets_empty_levels() -> None:
    book = LevelBook()
    for side, price, qty in [(Side.BUY, 10, 1), (Side.BUY, 12, 2), (Side.SELL, 15, 3), (Side.SELL, 13, 4)]:
        book.set(side, price, qty)
    book.set(Side.BUY, 12, 0)
    assert book.top(5) == ([(10, 1)], [(13, 4), (15, 3)])
    assert book.best() == ((10, 1), (13, 4))


levels = st.dictionaries(st.integers(1, 10_000), st.integers(1, 10_000), max_size=30)


@given(levels, levels)
def test_the_feeds_checksum_equals_the_reference_clients_over_any_book(bids: dict[int, int],
                                                                       asks: dict[int, int]) -> None:  # fmt: skip
    book = LevelBook(update_id=7)
    for p, q in bids.items():
        book.set(Side.BUY, p, q)
    for p, q in asks.items():
        book.set(Side.SELL, p + 10_000, q)
    local = LocalBook("BTCUSDT")
    top_bids, top_asks = book.top(5000)
    local.load({"lastUpdateId": 7, "bids": TEXTS.levels(top_bids), "asks": TEXTS.levels(top_asks)})
    assert local.checksum() == TEXTS.checksum(book)


def test_the_reference_client_refuses_a_gap_and_a_wrong_checksum() -> None:
    local = LocalBook("BTCUSDT")
    local.load({"lastUpdateId": 10, "bids": [["1.00", "0.00001"]], "asks": []})
    assert not local.apply({"U": 5, "u": 10, "b": [], "a": []})  # older than the snapshot: ignored
    try:
        local.apply({"U": 12, "u": 13, "b": [], "a": []})  # 11 is missing
        raise AssertionError("a gap was accepted")
    except BookOutOfSync:
        pass
    assert local.apply({"U": 9, "u": 11, "b": [["1.00", "0"]], "a": [], "cs": zlib.crc32(b"")})
    assert local.bids == {}
    try:
        local.apply({"U": 12, "u": 12, "b": [["2.00", "0.00002"]], "a": [], "cs": 1})
        raise AssertionError("a wrong checksum was accepted")
    except BookOutOfSync:
        pass
