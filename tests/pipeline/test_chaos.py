"""Chaos: kill -9 the engine, the sequencer and Redis, one at a time, under a steady stream of orders.

Shows that every acknowledged command is in the journal (once, at its acknowledged in_seq), that the events
stream continues gap-free with no duplicate and equals a clean replay of the whole journal, and that the live
engine's final books equal the replay's.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest

from client.sequencer import SequencerClient
from engine.core import Engine
from engine.events_stream import stored_snapshot
from engine.replay import replay, stream_hash
from sequencer.journal import Journal
from tests.harness import Venue, wait_for
from wire import keys
from wire.commands import Command, Deposit, Withdraw
from wire.enums import OrderType, Side, TimeInForce
from wire.errors import CommandRefused, SequencerUnavailable
from wire.venue import load_venue


class Load(threading.Thread):
    """A trader that submits a steady mix of orders and cancels, retrying the *same* command until it is
    acknowledged, and records every acknowledgement."""

    def __init__(self, client: SequencerClient, rate: float = 400.0) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.interval = 1.0 / rate
        self.stop = threading.Event()
        self.acked: dict[int, Command] = {}  # in_seq -> command
        self.retries = 0
        self.rng = random.Random(7)
        self.error: BaseException | None = None

    def next_command(self) -> Command:
        c, rng = self.client, self.rng
        account = rng.randint(1, 6)
        roll = rng.random()
        if roll < 0.05:  # funding too, so that recovery must restore balances exactly
            kind = Deposit if rng.random() < 0.6 else Withdraw
            return kind(c.src, c.next_req(), account, rng.choice(["BTC", "USDT"]), rng.randint(1, 10**8))
        if roll < 0.2:
            return c.cancel(account, "BTCUSDT", order_id=rng.randint(1, max(1, len(self.acked))))
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        price = 100_000 + rng.randint(-20, 20)
        if roll < 0.3:
            return c.place(account, "BTCUSDT", side, 1000, type=OrderType.MARKET, tif=TimeInForce.IOC)
        return c.place(account, "BTCUSDT", side, 1000 * rng.randint(1, 5), price=price)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                cmd = self.next_command()
                while True:
                    try:
                        ack = self.client.submit(cmd)
                        self.acked[ack.in_seq] = cmd
                        break
                    except (SequencerUnavailable, CommandRefused):
                        self.retries += 1  # outcome unknown or refused: resend the same request id
                        time.sleep(0.05)
                time.sleep(self.interval)
        except BaseException as exc:
            self.error = exc


@pytest.mark.chaos
@pytest.mark.timeout(180)
def test_kill9_engine_sequencer_redis_under_load_loses_nothing_and_doubles_nothing(venue: Venue) -> None:
    venue.fund(*range(1, 7), units=10**11)  # 1 000 USDT and BTC each: buys lock up to 50 USDT, some are refused
    load = Load(venue.client("chaos", timeout=0.5))
    load.start()

    def acked_count() -> int:
        return len(load.acked)

    def steady(more: int) -> None:
        target = acked_count() + more
        wait_for(lambda: acked_count() >= target or load.error is not None, 60, f"{more} more acknowledgements")
        assert load.error is None, load.error

    kills: list[tuple[str, Callable[[], None], Callable[[], None]]] = [
        ("engine", venue.engine.kill9, venue.engine.start),
        ("sequencer", venue.sequencer.kill9, venue.sequencer.start),
        ("redis", venue.redis.kill9, venue.redis.start),
        ("engine", venue.engine.kill9, venue.engine.start),
    ]
    steady(300)
    for _name, kill, restart in kills:
        kill()
        time.sleep(0.3)  # orders keep coming while it is down
        restart()
        steady(300)
    load.stop.set()
    load.join(10)
    assert load.error is None

    # the live engine snapshots its books at a known in_seq
    c = venue.client("auditor")
    snap_seq = c.submit(c.take_snapshot()).in_seq
    venue.wait_engine(snap_seq, timeout=60)
    r = venue.r()

    def snapshot_in_seq() -> int:
        data = stored_snapshot(r, "e0")
        return -1 if data is None else Engine.restore(load_venue().symbols, data, load_venue().assets).in_seq

    wait_for(lambda: snapshot_in_seq() == snap_seq, 10, "the final snapshot")

    # 1. every acknowledged command is in the journal, at its in_seq, and no request id twice
    journaled: dict[int, Command] = {}
    for batch in Journal(r, keys.journal("e0")).read_from(1):
        for i, cmd in enumerate(batch.cmds):
            journaled[batch.first_in_seq + i] = cmd
    assert list(journaled) == list(range(1, len(journaled) + 1))
    for in_seq, cmd in load.acked.items():
        assert journaled[in_seq] == cmd
    request_ids = [(cmd.src, cmd.req) for cmd in journaled.values()]
    assert len(request_ids) == len(set(request_ids)), "a request id was journaled twice"

    # 2. the events stream is gap-free, without duplicates, and equal to a clean replay of the journal
    result = replay(r, load_venue())
    assert result.commands == len(journaled)
    assert stream_hash(r, "e0") == (1, result.events, result.events_hash)

    # 3. the live engine's books equal the replay's
    data = stored_snapshot(r, "e0")
    assert data is not None
    live = Engine.restore(load_venue().symbols, data, load_venue().assets)
    assert live.state_hash() == replay(r, load_venue(), upto=snap_seq).state_hash  # books and balances
    assert any(held for held in live.accounts.balances.values())
    assert load.retries > 0  # the kills were felt by the client, and survived
