"""A venue with the MongoDB persister and a market-data feed process, a random order flow, and the engine's own
record of what happened (the events stream) to check the feed's output against."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.events_stream import read_events
from tests.harness import MongoServer, Service, Venue, free_port
from wire import keys
from wire.commands import Command
from wire.enums import OrderType, Side, TimeInForce
from wire.events import BookDelta, Event, TradeExecuted

ACCOUNTS = (1, 2, 3, 4)
MID = 5_000_000  # ticks: 50,000.00 USDT
READY = "feed ready"


@dataclass
class Feed:
    venue: Venue
    service: Service
    rest: str  # http://127.0.0.1:<port>
    ws: str  # ws://127.0.0.1:<port>
    mongo_url: str


def feed_service(venue: Venue, mongo_url: str, name: str = "feed") -> tuple[Service, str, str]:
    rest, ws = free_port(), free_port()
    env = dict(venue.env, MERCURY_MONGODB_URL=mongo_url, MERCURY_FEED_REST_PORT=str(rest),
               MERCURY_FEED_WS_PORT=str(ws))  # fmt: skip
    return Service("feeds", env, venue.dir / f"{name}.log", READY), f"http://127.0.0.1:{rest}", f"ws://127.0.0.1:{ws}"


@contextlib.contextmanager
def running_feed(directory: Path, mongo_url: str) -> Iterator[Feed]:
    venue = Venue(directory)
    venue.start()
    mongo = Service("persistence.mongo", dict(venue.env, MERCURY_MONGODB_URL=mongo_url),
                    directory / "mongo-persister.log", "mongo persister at out_seq")  # fmt: skip
    feed: Service | None = None
    try:
        venue.fund(*ACCOUNTS)
        mongo.start()
        feed, rest, ws = feed_service(venue, mongo_url)
        feed.start()
        yield Feed(venue, feed, rest, ws, mongo_url)
    finally:
        for service in (feed, mongo):
            if service is not None and service.alive():
                service.stop()
        venue.stop()


@pytest.fixture
def feed(tmp_path: Path, mongo_url: str, request: pytest.FixtureRequest) -> Iterator[Feed]:
    with running_feed(tmp_path, mongo_url) as f:
        yield f
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(f.venue.logs(), "\n--- feed ---\n", f.service.log()[-20_000:])


class Flow:
    """Random limit orders around a drifting mid, cancels, and market orders that trade: a book that keeps moving."""

    def __init__(self, venue: Venue, seed: int = 7, symbols: tuple[str, ...] = ("BTCUSDT",),
                 cancel_all_share: float = 0.1) -> None:  # fmt: skip
        self.client = venue.client("flow")
        self.cancel_all_share = cancel_all_share
        self.rnd = random.Random(seed)
        self.symbols = symbols
        self.mid = MID
        self.last_in_seq = 0

    def step(self, n: int) -> int:
        """``n`` commands, pipelined; returns the last in_seq."""
        c, rnd = self.client, self.rnd
        cmds: list[Command] = []
        for _ in range(n):
            account = rnd.choice(ACCOUNTS)
            symbol = rnd.choice(self.symbols)
            side = rnd.choice((Side.BUY, Side.SELL))
            self.mid += rnd.randint(-3, 3)
            roll = rnd.random()
            if roll < 0.1:
                cmds.append(c.place(account, symbol, side, rnd.randint(1, 30), type=OrderType.MARKET,
                                    tif=TimeInForce.IOC))  # fmt: skip
            elif roll < 0.1 + self.cancel_all_share:
                cmds.append(c.cancel_all(account, symbol))
            else:
                offset = rnd.randint(-20, 40)
                price = self.mid - offset if side is Side.BUY else self.mid + offset
                cmds.append(c.place(account, symbol, side, rnd.randint(1, 60), price))
        for cmd in cmds:
            c.send(cmd)
        for _ in cmds:
            self.last_in_seq = max(self.last_in_seq, c.recv_ack().in_seq)
        return self.last_in_seq


def engine_events(venue: Venue) -> list[Event]:
    r = venue.r()
    try:
        return list(read_events(r, keys.events(venue.shard)))
    finally:
        r.close()


def books_by_update(events: list[Event], symbol: str) -> dict[int, dict[tuple[Side, int], int]]:
    """The symbol's levels after every update id (copies: only for the small books of the tests)."""
    levels: dict[tuple[Side, int], int] = {}
    out: dict[int, dict[tuple[Side, int], int]] = {}
    for ev in events:
        if type(ev) is BookDelta and ev.symbol == symbol:
            if ev.qty:
                levels[(ev.side, ev.price)] = ev.qty
            else:
                levels.pop((ev.side, ev.price), None)
            out[ev.update_id] = dict(levels)
    return out


def trades_of(events: list[Event], symbol: str) -> list[TradeExecuted]:
    return [ev for ev in events if type(ev) is TradeExecuted and ev.symbol == symbol]


__all__ = ["Feed", "Flow", "MongoServer", "books_by_update", "engine_events", "feed_service", "trades_of"]
