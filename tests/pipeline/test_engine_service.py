"""The engine process against a real Redis and the real sequencer: events out twice, topics, heartbeats,
restarts that emit nothing twice, snapshots, gaps and garbage on its socket."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
import zmq

from client.events import EventFollower, EventSubscriber
from engine.events_stream import read_events, stored_snapshot
from engine.replay import replay, stream_hash
from engine.service import EngineService
from sequencer.journal import Journal
from tests.harness import Venue, wait_for
from wire import keys
from wire.codec import Heartbeat, encode
from wire.enums import Side
from wire.events import BookDelta, Event, OrderAccepted, TradeExecuted
from wire.venue import load_venue

SYM = "BTCUSDT"


def trade_pair(venue: Venue, n: int, price: int = 100_000) -> int:
    """n resting sells from account 1 and n buys from account 2 that fill them; returns the last in_seq.
    Both accounts are created and funded on first use."""
    if not venue.funded:
        venue.fund(1, 2)
    c = venue.client()
    last = 0
    for i in range(n):
        c.submit(c.place(1, SYM, Side.SELL, 1000, price=price + i))
        last = c.submit(c.place(2, SYM, Side.BUY, 1000, price=price + i)).in_seq
    return last


def collect(follower: EventFollower, out_seq: int, timeout: float = 10) -> list[Event]:
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while (not events or events[-1].out_seq < out_seq) and time.monotonic() < deadline:
        events += follower.poll(0.1)
    return events


def test_events_when_published_are_in_stream_and_on_pub_identically(venue: Venue) -> None:
    follower = EventFollower(venue.r(), "e0", venue.settings)
    time.sleep(0.2)  # let the SUB connect so the events arrive live
    last = trade_pair(venue, 20)
    venue.wait_engine(last)
    stored = list(read_events(venue.r(), keys.events("e0")))
    live = collect(follower, stored[-1].out_seq)
    follower.close()
    assert live == stored
    assert [e.out_seq for e in stored] == list(range(1, len(stored) + 1))
    assert sum(isinstance(e, TradeExecuted) for e in stored) == 20


def test_topics_when_subscribed_by_account_and_symbol_carry_only_theirs(venue: Venue) -> None:
    mine = EventSubscriber(venue.settings, [b"a/1/"])
    market = EventSubscriber(venue.settings, [b"m/BTCUSDT/"])
    other = EventSubscriber(venue.settings, [b"m/ETHUSDT/"])
    time.sleep(0.3)
    last = trade_pair(venue, 3)
    venue.wait_engine(last)

    def drain(sub: EventSubscriber) -> list[Event]:
        got: list[Event] = []
        while (msg := sub.recv(0.3)) is not None:
            assert not isinstance(msg[1], Heartbeat)
            got += msg[1]
        return got

    account_events = drain(mine)
    market_events = drain(market)
    assert account_events and market_events
    for e in account_events:
        assert isinstance(e, TradeExecuted) or getattr(e, "account", None) == 1
    assert all(isinstance(e, TradeExecuted | BookDelta) for e in market_events)
    assert sum(isinstance(e, TradeExecuted) for e in account_events) == 3  # account 1 was the maker each time
    assert drain(other) == []
    for sub in (mine, market, other):
        sub.close()


def test_heartbeat_when_idle_reports_last_in_seq(venue: Venue) -> None:
    last = trade_pair(venue, 2)
    sub = EventSubscriber(venue.settings, [b"h/"])
    deadline = time.monotonic() + 5
    beat = None
    while time.monotonic() < deadline:
        msg = sub.recv(1)
        if msg is not None and isinstance(msg[1], Heartbeat) and msg[1].in_seq == last:
            beat = msg[1]
            break
    sub.close()
    assert beat is not None and beat.out_seq == venue.stored_out_seq()


def test_restart_when_killed_emits_nothing_twice_and_continues_gap_free(venue: Venue) -> None:
    last = trade_pair(venue, 10)
    venue.wait_engine(last)
    venue.engine.kill9()
    last = trade_pair(venue, 10, price=100_100)  # journaled while the engine is down
    venue.engine.start()
    venue.wait_engine(last)
    _, count, digest = stream_hash(venue.r(), "e0")  # raises on a gap or a duplicate
    result = replay(venue.r(), load_venue())
    assert (count, digest) == (result.events, result.events_hash)
    assert "replayed to" in venue.engine.log()


def test_snapshot_when_requested_is_stored_and_used_on_restart(venue: Venue) -> None:
    c = venue.client()
    trade_pair(venue, 5)
    c.submit(c.place(1, SYM, Side.SELL, 1000, price=101_000))
    snap_seq = c.submit(c.take_snapshot()).in_seq
    venue.wait_engine(snap_seq)
    r = venue.r()
    wait_for(lambda: stored_snapshot(r, "e0") is not None, 5, "the snapshot")
    last = c.submit(c.place(2, SYM, Side.BUY, 500, price=101_000)).in_seq
    venue.wait_engine(last)
    venue.engine.kill9()
    venue.engine.start()
    assert f"snapshot at in_seq {snap_seq}" in venue.engine.log()
    last = c.submit(c.place(2, SYM, Side.BUY, 500, price=101_000)).in_seq
    venue.wait_engine(last)
    result = replay(r, load_venue())
    assert stream_hash(r, "e0") == (1, result.events, result.events_hash)


def test_clean_stop_when_terminated_snapshots_and_restarts_from_it(venue: Venue) -> None:
    last = trade_pair(venue, 3)
    venue.wait_engine(last)
    assert venue.engine.stop() == 0
    venue.engine.start()
    assert f"snapshot at in_seq {last}, replayed to {last}" in venue.engine.log()


@pytest.fixture
def in_process(venue: Venue) -> Iterator[EngineService]:
    """The engine's service object in this process, on the venue's real Redis (the engine process stopped)."""
    venue.engine.kill9()
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    service = EngineService(venue.settings, load_venue(), redis.Redis.from_url(venue.redis.url), ctx)
    service.recover()
    yield service
    service.close()
    service.r.close()


def test_garbage_frame_at_engine_is_dropped_and_logged_once(
    venue: Venue, in_process: EngineService, caplog: pytest.LogCaptureFixture
) -> None:
    before = in_process.engine.state_hash()
    for frame in (b"", b"\xff\x00garbage", encode(["not", "a", "batch"]), encode([1, [1], [[1, "x"]]])):
        in_process.handle_frame(frame)
    assert in_process.engine.state_hash() == before and in_process.engine.in_seq == 0
    assert sum("undecodable batch" in r.message for r in caplog.records) == 4


def test_gap_on_socket_is_filled_from_journal(venue: Venue, in_process: EngineService) -> None:
    venue.fund(1)  # journaled only: the engine is stopped, and gets these from the journal too
    c = venue.client()
    acks = [c.submit(c.place(1, SYM, Side.SELL, 1000, price=100_000 + i)) for i in range(5)]
    journal = Journal(venue.r(), keys.journal("e0"))
    batches = list(journal.read_from(1))
    # deliver only the last batch: the engine must fetch 1..4 from the journal first, then skip a re-delivery
    in_process.handle_frame(encode(batches[-1]))
    assert in_process.engine.in_seq == acks[-1].in_seq
    in_process.handle_frame(encode(batches[0]))
    assert in_process.engine.in_seq == acks[-1].in_seq
    in_process.close()
    stored = list(read_events(venue.r(), keys.events("e0")))
    assert sum(isinstance(e, OrderAccepted) for e in stored) == 5
    assert [e.out_seq for e in stored] == list(range(1, len(stored) + 1))
