"""The client library against the real sequencer: sync and asyncio submit, pipelining, timeouts, refusals."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest

from client.events import EventFollower
from client.sequencer import AsyncSequencerClient
from tests.harness import Venue
from wire.enums import AckStatus, Side
from wire.errors import CommandRefused, SequencerUnavailable
from wire.events import AccountCreated, BalanceChanged, OrderAccepted, OrderRejected
from wire.reasons import RejectReason


def test_submit_when_retried_with_same_command_is_duplicate(venue: Venue) -> None:
    c = venue.client()
    cmd = c.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000)
    assert c.submit(cmd).status is AckStatus.JOURNALED
    assert c.submit(cmd).status is AckStatus.DUPLICATE


def test_async_submit_when_many_in_flight_each_gets_its_own_ack(venue: Venue) -> None:
    async def run() -> list[int]:
        client = AsyncSequencerClient(venue.settings)
        try:
            cmds = [client.place(1, "BTCUSDT", Side.SELL, 1000, price=100_000 + i) for i in range(200)]
            acks = await asyncio.gather(*(client.submit(cmd) for cmd in cmds))
            assert [a.req for a in acks] == [cmd.req for cmd in cmds]
            return [a.in_seq for a in acks]
        finally:
            await client.close()

    seqs = asyncio.run(run())
    assert sorted(seqs) == list(range(1, 201))


def test_async_submit_when_sequencer_down_raises_unavailable(venue: Venue) -> None:
    venue.sequencer.kill9()

    async def run() -> None:
        client = AsyncSequencerClient(venue.settings, timeout=0.3)
        try:
            with pytest.raises(SequencerUnavailable):
                await client.submit(client.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000))
        finally:
            await client.close()

    asyncio.run(run())


def test_async_submit_waiting_for_a_gone_sequencer_fails_at_once_when_released(venue: Venue) -> None:
    # a stopping gateway (release) whose sequencer stopped first: a command still waiting for the connection fails
    # now, not after its whole timeout (past the server's grace, which cancelled it mid-request: no answer)
    venue.sequencer.kill9()

    async def run() -> None:
        client = AsyncSequencerClient(venue.settings, timeout=5)
        try:
            waiting = asyncio.create_task(client.submit(client.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000)))
            await asyncio.sleep(0.1)
            assert not waiting.done()  # still trying to send
            started = time.monotonic()
            client.release()
            with pytest.raises(SequencerUnavailable, match="stopping"):
                await waiting
            assert time.monotonic() - started < 0.5
            with pytest.raises(SequencerUnavailable, match="stopping"):  # and every later one
                await client.submit(client.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000))
        finally:
            await client.close()

    asyncio.run(run())


def test_async_submit_when_malformed_raises_refused(venue: Venue) -> None:
    async def run() -> None:
        client = AsyncSequencerClient(venue.settings)
        bad = msgspec.structs.replace(client.place(1, "BTCUSDT", Side.BUY, 1000, price=100_000), src="")
        try:
            with pytest.raises(CommandRefused) as info:
                await client.submit(bad)
            assert info.value.status == AckStatus.MALFORMED
        finally:
            await client.close()

    asyncio.run(asyncio.wait_for(run(), 5))


def test_follower_when_joining_late_gets_history_then_live(venue: Venue) -> None:
    venue.fund(1)
    c = venue.client()
    c.submit(c.place(1, "BTCUSDT", Side.SELL, 1000, price=100_000))
    last = c.submit(c.place(1, "NOPE", Side.SELL, 1000, price=100_000)).in_seq
    venue.wait_engine(last)
    follower = EventFollower(venue.r(), "e0", venue.settings)
    events = [e for e in follower.poll(1) if not isinstance(e, AccountCreated | BalanceChanged)]
    assert isinstance(events[0], OrderAccepted)
    assert isinstance(events[-1], OrderRejected) and events[-1].reason is RejectReason.UNKNOWN_SYMBOL
    last = c.submit(c.place(1, "BTCUSDT", Side.SELL, 1000, price=100_001)).in_seq
    live: list[object] = []
    for _ in range(50):
        live += follower.poll(0.1)
        if live:
            break
    follower.close()
    assert live and all(getattr(e, "in_seq", 0) == last for e in live)
