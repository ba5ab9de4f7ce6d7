"""The sequencer against a real Redis: journal before ack, batching, duplicates, bad input, backpressure."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

from sequencer.journal import Journal
from tests.harness import Venue
from wire import keys
from wire.codec import encode
from wire.commands import CancelOrder, PlaceOrder
from wire.enums import AckStatus, OrderType, Side, TimeInForce
from wire.errors import CommandRefused, SequencerUnavailable
from wire.streams import xrange


def test_ack_when_journaled_entry_holds_command_at_its_in_seq(venue: Venue) -> None:
    c = venue.client()
    cmd = c.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000)
    ack = c.submit(cmd)
    assert ack.status is AckStatus.JOURNALED and ack.in_seq == 1
    batch = Journal(venue.r(), keys.journal("e0")).last_batch()
    assert batch is not None and batch.first_in_seq == 1 and batch.cmds == [cmd]
    assert batch.stamps[0] > 1_700_000_000 * 10**9  # a real wall-clock stamp, in ns


def test_burst_when_pipelined_is_journaled_in_fewer_entries_than_commands(venue: Venue) -> None:
    c = venue.client()
    cmds = [c.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000 - i) for i in range(2000)]
    for cmd in cmds:
        c.send(cmd)
    acks = [c.recv_ack() for _ in cmds]
    assert [a.in_seq for a in acks] == list(range(1, 2001))
    entries = xrange(venue.r(), keys.journal("e0"), "-")
    assert len(entries) < len(cmds)  # batches formed under load
    journaled = [cmd for b in Journal(venue.r(), keys.journal("e0")).read_from(1) for cmd in b.cmds]
    assert journaled == cmds
    # entry ids are the first in_seq of each batch: a reader can seek by sequence
    first = 1
    for entry_id, _ in entries:
        assert entry_id == f"{first}-0".encode()
        batch = Journal(venue.r(), keys.journal("e0")).read_from(first)
        first += len(next(iter(batch)).cmds)


def test_lone_command_is_journaled_at_once(venue: Venue) -> None:
    c = venue.client()
    for i in range(5):
        c.submit(c.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000 - i))
        time.sleep(0.01)
    assert len(xrange(venue.r(), keys.journal("e0"), "-")) == 5


def test_submit_when_request_id_repeated_answers_duplicate_and_journals_once(venue: Venue) -> None:
    c = venue.client()
    cmd = c.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000)
    first = c.submit(cmd)
    again = c.submit(cmd)
    assert again.status is AckStatus.DUPLICATE and again.in_seq == first.in_seq
    assert Journal(venue.r(), keys.journal("e0")).last_in_seq() == 1


def test_duplicate_window_when_sequencer_restarts_is_rebuilt_from_journal(venue: Venue) -> None:
    c = venue.client()
    cmd = c.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000)
    assert c.submit(cmd).in_seq == 1
    venue.sequencer.kill9()
    venue.sequencer.start()
    c2 = venue.client()  # a new connection, the same request id
    ack = c2.submit(cmd)
    assert ack.status is AckStatus.DUPLICATE and ack.in_seq == 1
    # and in_seq continues from the journal, not from zero
    assert c2.submit(c2.place(1, "BTCUSDT", Side.BUY, 1000, price=99_000)).in_seq == 2


@pytest.mark.parametrize(
    ("frame", "detail"),
    [
        (b"\xc1\xc1garbage", "bad command"),  # not msgpack at all
        (encode([1, "src", 1]), "bad command"),  # too short
        (encode([77, "src", 1, 2]), "bad command"),  # unknown tag
        (encode([1, "src", "one", 1, "BTCUSDT", 1, 1, 1, 100, 1, ""]), "bad command"),  # wrong field type
        (encode([1, "src", 1, 1, "BTCUSDT", 9, 1, 1, 100, 1, ""]), "bad command"),  # side out of its enum
        (encode([1, "", 1, 1, "BTCUSDT", 1, 1, 1, 100, 1, ""]), "src must be non-empty"),  # no request id
        (encode([1, "src", 0, 1, "BTCUSDT", 1, 1, 1, 100, 1, ""]), "src must be non-empty"),
    ],
)
def test_bad_frame_answers_malformed_and_journals_nothing(venue: Venue, frame: bytes, detail: str) -> None:
    c = venue.client()
    ack = c.submit_raw(frame)
    assert ack.status is AckStatus.MALFORMED and ack.in_seq == 0 and detail in ack.detail
    assert Journal(venue.r(), keys.journal("e0")).last_in_seq() == 0
    # the stream goes on
    assert c.submit(c.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000)).in_seq == 1
    assert venue.sequencer.alive()


@pytest.mark.parametrize("frames", [[b"one", b"two"], [b""]], ids=["two-frames", "empty-frame"])
def test_bad_frame_count_answers_malformed(venue: Venue, frames: list[bytes]) -> None:
    c = venue.client()
    c.socket.send_multipart(frames)
    ack = c.recv_ack()
    assert ack.status is AckStatus.MALFORMED and "one non-empty frame" in ack.detail
    assert c.submit(c.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000)).in_seq == 1


def test_submit_raises_refused_for_malformed(venue: Venue) -> None:
    c = venue.client()
    bad = PlaceOrder("", 1, 1, "BTCUSDT", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 1, 1, "")
    with pytest.raises(CommandRefused) as info:
        c.submit(bad)
    assert info.value.status == AckStatus.MALFORMED


def test_submit_when_sequencer_down_raises_unavailable_quickly(venue: Venue) -> None:
    venue.sequencer.kill9()
    c = venue.client(timeout=0.3)
    started = time.monotonic()
    with pytest.raises(SequencerUnavailable, match="not connected"):
        c.submit(c.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000))
    assert time.monotonic() - started < 2


def test_new_orders_when_engine_lags_are_refused_busy_but_cancels_pass(tmp_path: Path) -> None:
    v = Venue(tmp_path, busy_lag="3")
    v.start()
    try:
        v.engine.kill9()
        c = v.client()
        for i in range(4):
            assert c.submit(c.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000 - i)).status is AckStatus.JOURNALED
        with pytest.raises(CommandRefused) as info:
            c.submit(c.place(1, "BTCUSDT", Side.BUY, 1000, price=90_000))
        assert info.value.status == AckStatus.BUSY
        cancel = CancelOrder(c.src, c.next_req(), 1, "BTCUSDT", 1, "")
        assert c.submit(cancel).status is AckStatus.JOURNALED
        v.engine.start()
        v.wait_engine(5)
        time.sleep(0.3)  # the next heartbeat reaches the sequencer
        assert c.submit(c.place(1, "BTCUSDT", Side.BUY, 1000, price=90_000)).status is AckStatus.JOURNALED
    finally:
        v.stop()


def test_commands_when_redis_down_are_refused_unavailable_then_flow_again(venue: Venue) -> None:
    c = venue.client(timeout=3)
    assert c.submit(c.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000)).in_seq == 1
    venue.redis.kill9()
    pending = c.place(1, "BTCUSDT", Side.BUY, 1000, price=99_000)
    with pytest.raises(SequencerUnavailable):
        c.submit(pending)  # the write's outcome is unknown: the sequencer holds the ack until Redis answers
    refused = c.place(1, "BTCUSDT", Side.BUY, 1000, price=98_000)
    with pytest.raises(CommandRefused) as info:
        c.submit(refused)
    assert info.value.status == AckStatus.UNAVAILABLE
    venue.redis.start()
    # the pending command lands exactly once; a retry of it is a duplicate, not a second order
    deadline = time.monotonic() + 10
    while True:
        try:
            ack = c.submit(pending)
            break
        except CommandRefused:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert ack.in_seq == 2
    assert c.submit(refused).in_seq == 3
    journaled = [cmd for b in Journal(venue.r(), keys.journal("e0")).read_from(1) for cmd in b.cmds]
    assert [msgspec.structs.astuple(x)[1] for x in journaled] == [1, pending.req, refused.req]


def test_request_id_repeated_within_one_batch_is_journaled_once_and_answered_duplicate(venue: Venue) -> None:
    c = venue.client()
    cmds = [c.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000 - i) for i in range(50)]
    repeated = cmds[10]
    for cmd in [*cmds[:20], repeated, *cmds[20:]]:  # pipelined: the repeat lands in the batch of its original
        c.send(cmd)
    acks = [c.recv_ack() for _ in range(51)]
    of_repeat = [a for a in acks if a.req == repeated.req]
    assert sorted(a.status for a in of_repeat) == [AckStatus.JOURNALED, AckStatus.DUPLICATE]
    assert of_repeat[0].in_seq == of_repeat[1].in_seq == 11
    journaled = [cmd for b in Journal(venue.r(), keys.journal("e0")).read_from(1) for cmd in b.cmds]
    assert journaled == cmds
