"""Local books kept from the feed (Mercury's reference client, an unmodified ccxt.pro and python-binance's depth
cache) equal the engine's book at every update they reach, under a random order flow, started mid-stream, and across
a feed restart."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from decimal import Decimal
from typing import Any

import ccxt.pro
import pytest
from binance import AsyncClient, BinanceSocketManager, DepthCacheManager

from client.marketbook import LocalBook, follow_book
from tests.feeds.conftest import Feed, Flow, books_by_update, engine_events
from tests.persistence.test_postgres_persister import replayed
from wire import keys
from wire.enums import Side
from wire.venue import DEFAULT_VENUE, load_venue

SPEC = {s.symbol: s for s in load_venue(DEFAULT_VENUE).symbols}["BTCUSDT"]


def as_text(levels: dict[tuple[Side, int], int], side: Side) -> dict[str, str]:
    # padded to BTC's and USDT's 8 decimals, as Binance writes them
    return {f"{SPEC.ticks_to_price(p):.8f}": f"{SPEC.lots_to_qty(q):.8f}" for (s, p), q in levels.items() if s is side}


def flow_in_background(flow: Flow, batches: int, size: int, pause: float = 0.05) -> threading.Thread:
    """``batches`` of ``size`` commands, ``pause`` s apart: the diff streams' windows each get some changes."""

    def run() -> None:
        for _ in range(batches):
            flow.step(size)
            time.sleep(pause)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def final_update_id(feed: Feed, flow: Flow) -> int:
    feed.venue.wait_engine(flow.last_in_seq)
    books = books_by_update(engine_events(feed.venue), "BTCUSDT")
    return max(books)


async def until_reached(follower: asyncio.Task[None], seen: list[Any], done: threading.Thread, feed: Feed,
                        flow: Flow) -> None:  # fmt: skip
    """Wait for the flow to end, then for ``seen`` to reach the engine's last update id, and stop the follower."""
    await asyncio.to_thread(done.join)
    target = await asyncio.to_thread(final_update_id, feed, flow)
    try:
        async with asyncio.timeout(30):
            while not seen or seen[-1][0] < target:
                if follower.done():
                    follower.result()  # its exception, if it failed
                    raise AssertionError(f"the follower stopped at {seen[-1][0] if seen else None} of {target}")
                await asyncio.sleep(0.02)
    finally:
        # awaited, not only cancelled: its WebSocket must be closed before this loop ends (left to the loop's
        # shutdown, a socket was once collected unclosed during the next test: a ResourceWarning, an error here)
        follower.cancel()
        await asyncio.wait([follower])  # until it has ended (its outcome, if any, was read above)


async def follow_until(feed: Feed, stream: str, done: threading.Thread, flow: Flow) -> list[tuple[int, LocalBook]]:
    seen: list[tuple[int, LocalBook]] = []

    async def follow() -> None:
        # aclosing: a cancel closes the generator (and its WebSocket) here, not whenever it is collected
        async with contextlib.aclosing(follow_book(feed.ws, feed.rest, "BTCUSDT", stream, max_restarts=0)) as books:
            async for book in books:
                copy = LocalBook("BTCUSDT")
                copy.bids, copy.asks, copy.update_id = dict(book.bids), dict(book.asks), book.update_id
                seen.append((book.update_id, copy))

    await until_reached(asyncio.create_task(follow()), seen, done, feed, flow)
    return seen


def assert_books_match(feed: Feed, seen: list[tuple[int, LocalBook]]) -> None:
    books = books_by_update(engine_events(feed.venue), "BTCUSDT")
    assert len(seen) > 3
    for update_id, book in seen:
        expected = books[update_id]
        assert book.bids == as_text(expected, Side.BUY), update_id
        assert book.asks == as_text(expected, Side.SELL), update_id


@pytest.mark.timeout(120)
@pytest.mark.parametrize("stream", ["depth@100ms", "depth", "depth@0ms"])
def test_the_reference_clients_book_equals_the_engines_at_every_update(feed: Feed, stream: str) -> None:
    flow = Flow(feed.venue)
    flow.step(300)  # the client joins a book that already has a history
    running = flow_in_background(flow, 30, 20, 0.15 if stream == "depth" else 0.05)
    seen = asyncio.run(follow_until(feed, stream, running, flow))
    running.join()
    assert_books_match(feed, seen)


@pytest.mark.timeout(120)
def test_a_restarted_feed_serves_a_consistent_book_even_when_the_events_stream_was_trimmed(feed: Feed) -> None:
    flow = Flow(feed.venue)
    flow.step(300)
    feed.service.kill9()
    flow.step(300)
    # trim the events stream past everything: the restarted feed cannot catch up from a stored snapshot and
    # must ask the engine for a new one
    r = feed.venue.r()
    try:
        r.hdel(keys.consumers(feed.venue.shard), "feed-" + feed.ws.rsplit(":", 1)[1])
        r.xtrim(keys.events(feed.venue.shard), minid=f"{feed.venue.stored_out_seq()}-0")
    finally:
        r.close()
    offset = len(feed.service.log())
    feed.service.start()
    assert "asking the engine for a new one" in feed.service.log(offset)
    running = flow_in_background(flow, 10, 50)
    seen = asyncio.run(follow_until(feed, "depth@100ms", running, flow))
    running.join()
    # the trimmed stream no longer tells the book at every id, the journal does: the engine's books from a replay
    # (reading the trimmed stream left as few as 3 of the client's updates to compare, seen in CI)
    feed.venue.wait_engine(flow.last_in_seq)
    books = books_by_update(replayed(feed.venue)[1], "BTCUSDT")
    assert len(seen) > 3 and seen[-1][0] == max(books)
    for update_id, book in seen:
        assert book.bids == as_text(books[update_id], Side.BUY), update_id
        assert book.asks == as_text(books[update_id], Side.SELL), update_id


def pro_client(feed: Feed) -> Any:
    api = {"public": f"{feed.rest}/api/v3", "private": f"{feed.rest}/api/v3", "v1": f"{feed.rest}/api/v1",
           "ws": {"spot": f"{feed.ws}/ws", "margin": f"{feed.ws}/ws"}}  # fmt: skip
    return ccxt.pro.binance({"enableRateLimit": False, "urls": {"api": api},
                             "options": {"defaultType": "spot", "fetchCurrencies": False, "fetchMargins": False,
                                         "fetchMarkets": {"types": ["spot"]}}})  # fmt: skip


@pytest.mark.timeout(120)
def test_ccxt_pro_keeps_the_engines_book_without_a_checksum_error(feed: Feed) -> None:
    flow = Flow(feed.venue, seed=11)
    flow.step(300)

    async def scenario() -> list[tuple[int, list[list[float]], list[list[float]]]]:
        pro = pro_client(feed)
        seen: list[tuple[int, list[list[float]], list[list[float]]]] = []

        async def follow() -> None:
            while True:
                book = await pro.watch_order_book("BTC/USDT")  # a ChecksumError (a gap) would raise here
                seen.append((book["nonce"], [list(x) for x in book["bids"]], [list(x) for x in book["asks"]]))

        try:
            await pro.load_markets()
            running = flow_in_background(flow, 20, 20)
            await until_reached(asyncio.create_task(follow()), seen, running, feed, flow)
        finally:
            await pro.close()
        return seen

    seen = asyncio.run(scenario())
    books = books_by_update(engine_events(feed.venue), "BTCUSDT")
    assert len(seen) > 3
    for nonce, bids, asks in seen:
        expected = books[nonce]
        want_bids = sorted(([float(Decimal(p)), float(Decimal(q))] for p, q in as_text(expected, Side.BUY).items()),
                           reverse=True)  # fmt: skip
        want_asks = sorted([float(Decimal(p)), float(Decimal(q))] for p, q in as_text(expected, Side.SELL).items())
        assert (bids, asks) == (want_bids, want_asks), nonce


@pytest.mark.timeout(120)
@pytest.mark.parametrize("interval", [None, 100])
def test_python_binances_depth_cache_equals_the_engines_book(feed: Feed, interval: int | None) -> None:
    """python-binance's DepthCacheManager, unmodified but for its URLs: a REST snapshot, then the diff stream. It
    removes a level only when the size reads exactly "0.00000000", so it keeps dead levels unless Mercury pads its
    numbers as Binance does (seen before the padding: the cache kept every level ever traded out)."""
    flow = Flow(feed.venue, seed=23)
    flow.step(300)

    async def scenario() -> list[tuple[int, list[list[Decimal]], list[list[Decimal]]]]:
        client = AsyncClient()  # public endpoints only: no key; the constructor makes no request
        client.API_URL = feed.rest + "/api"
        sockets = BinanceSocketManager(client)
        sockets.STREAM_URL = feed.ws + "/"  # it appends ws/<symbol>@depth[@100ms]
        seen: list[tuple[int, list[list[Decimal]], list[list[Decimal]]]] = []
        try:
            async with DepthCacheManager(client, "BTCUSDT", bm=sockets, limit=1000, conv_type=Decimal,
                                         ws_interval=interval) as cache:  # fmt: skip

                async def follow() -> None:
                    while True:
                        book = await cache.recv()
                        # the update id the cache is at: the manager keeps it only privately
                        seen.append((cache._last_update_id, book.get_bids(), book.get_asks()))

                running = flow_in_background(flow, 20, 20, 0.3 if interval is None else 0.05)  # ~6 s at 1 s
                await until_reached(asyncio.create_task(follow()), seen, running, feed, flow)
        finally:
            await client.close_connection()
        return seen

    seen = asyncio.run(scenario())
    feed.venue.wait_engine(flow.last_in_seq)
    books = books_by_update(replayed(feed.venue)[1], "BTCUSDT")  # the events stream may be trimmed by now
    assert len(seen) > 3
    for update_id, bids, asks in seen:
        expected = books[update_id]
        want_bids = sorted(([Decimal(p), Decimal(q)] for p, q in as_text(expected, Side.BUY).items()), reverse=True)
        want_asks = sorted([Decimal(p), Decimal(q)] for p, q in as_text(expected, Side.SELL).items())
        assert (bids, asks) == (want_bids, want_asks), update_id
