"""Replay mode: recorded order flow through Mercury's own engine, with a strategy's orders inserted.

Where research.backtest fills at a bar's open, here a strategy's order meets the real book the recorded flow
built, under the real matching rules (price-time priority, self-trade prevention, price bands, pre-trade risk and
the venue's maker/taker fees), because it is applied by ``engine.core.Engine`` like any other command.

The recorded flow is a journal: commands with their in_seq and sequencer stamp (``from_journal`` reads it from
JournalBatch values, ``read_journal`` from a venue's Redis). Inserting commands shifts every later in_seq, and an
order's id IS the in_seq of the command that placed it, so a recorded cancel or replace that names an order id
is rewritten to that order's new id. The recorded flow does not react to the strategy: its orders are what they
were, which is the usual limit of a replay (the market impact of the strategy on others is not modelled).

The strategy sees every event after each command (the recorded ones and its own) and may answer with
commands. They are due ``latency_ns`` after the stamp of the command whose events it saw, and are applied before
the first recorded command stamped at or after that time (at the end of the flow, whatever waits is applied).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import msgspec
import redis

from engine.core import Engine
from sequencer.journal import Journal
from wire import keys
from wire.codec import JournalBatch
from wire.commands import CancelOrder, Command, CreateAccount, Deposit, ReplaceOrder
from wire.enums import Side
from wire.events import Event, TradeExecuted
from wire.venue import Venue


class Recorded(NamedTuple):
    in_seq: int
    ts: int
    cmd: Command


def from_journal(batches: Iterable[JournalBatch]) -> Iterator[Recorded]:
    for batch in batches:
        for i, cmd in enumerate(batch.cmds):
            yield Recorded(batch.first_in_seq + i, batch.stamps[i], cmd)


def read_journal(r: redis.Redis, shard: str) -> list[Recorded]:
    """A venue's whole journal, as the engine would replay it (engine.replay)."""
    return list(from_journal(Journal(r, keys.journal(shard)).read_from(1)))


class Market:
    """What a strategy may look at between commands: the engine's books and its own balances, read-only."""

    def __init__(self, engine: Engine, account: int) -> None:
        self._engine = engine
        self.account = account
        self.ts = 0  # stamp of the command whose events the strategy is seeing

    def best(self, symbol: str, side: Side) -> tuple[int, int] | None:
        """(price, open quantity) of the best level on one side, or None when it is empty."""
        level = self._engine.matchers[symbol].book.side(side).best()
        return None if level is None else (level.price, level.total)

    def depth(self, symbol: str, side: Side, levels: int = 10) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for level in self._engine.matchers[symbol].book.side(side).iter_levels():
            if len(out) == levels:
                break
            out.append((level.price, level.total))
        return out

    def balance(self, asset: str) -> tuple[int, int]:
        """(free, locked) of the strategy's account, in the asset's integer units."""
        return self._engine.accounts.balance(self.account, asset)


class ReplayStrategy:
    """Override ``on_events``; return the commands to send (their ``account`` should be ``market.account``)."""

    def on_events(self, market: Market, events: Sequence[Event]) -> Iterable[Command]:
        return ()


@dataclass(slots=True)
class ReplayResult:
    engine: Engine
    account: int
    events: list[Event] = field(default_factory=list)
    fills: list[TradeExecuted] = field(default_factory=list)  # trades the strategy's account was part of
    inserted: list[tuple[int, Command]] = field(default_factory=list)  # (in_seq, command) of the strategy's
    order_ids: dict[int, int] = field(default_factory=dict)  # recorded in_seq -> in_seq in this replay


def _renumbered(cmd: Command, ids: dict[int, int]) -> Command:
    if isinstance(cmd, CancelOrder | ReplaceOrder) and cmd.order_id:
        # an id that names no recorded command stays as it is: the engine refuses it as it did live
        return msgspec.structs.replace(cmd, order_id=ids.get(cmd.order_id, cmd.order_id))
    return cmd


class _Runner:
    def __init__(self, venue: Venue, strategy: ReplayStrategy, account: int, latency_ns: int) -> None:
        self.engine = Engine(venue.symbols, venue.assets)
        self.strategy = strategy
        self.latency_ns = latency_ns
        self.market = Market(self.engine, account)
        self.result = ReplayResult(self.engine, account)
        self.waiting: deque[tuple[int, Command]] = deque()  # (due stamp, command), due stamps never decrease

    def apply(self, ts: int, cmd: Command, inserted: bool) -> list[Event]:
        in_seq = self.engine.in_seq + 1
        events = self.engine.apply(in_seq, ts, cmd)
        self.result.events.extend(events)
        account = self.market.account
        for ev in events:
            if isinstance(ev, TradeExecuted) and account in (ev.maker_account, ev.taker_account):
                self.result.fills.append(ev)
        if inserted:
            self.result.inserted.append((in_seq, cmd))
        self.market.ts = ts
        for answer in self.strategy.on_events(self.market, events):
            self.waiting.append((ts + self.latency_ns, answer))
        return events

    def flush(self, before: int | None) -> None:
        """Apply the strategy's commands due before the stamp ``before`` (all of them when None)."""
        while self.waiting and (before is None or self.waiting[0][0] <= before):
            due, cmd = self.waiting.popleft()
            self.apply(max(due, self.market.ts), cmd, inserted=True)


def replay_with(
    flow: Iterable[Recorded],
    strategy: ReplayStrategy,
    venue: Venue,
    *,
    account: int,
    funding: dict[str, int] | None = None,
    latency_ns: int = 0,
) -> ReplayResult:
    """Replay ``flow`` on a fresh engine for ``venue``, opening ``account`` for the strategy first and depositing
    ``funding`` (asset -> integer units) into it. ``account`` must be one the recorded flow never uses."""
    runner = _Runner(venue, strategy, account, latency_ns)
    first = True
    for rec in flow:
        if first:
            first = False
            runner.apply(rec.ts, CreateAccount("replay", 0, account), inserted=True)
            for req, (asset, amount) in enumerate(sorted((funding or {}).items()), start=1):
                runner.apply(rec.ts, Deposit("replay", req, account, asset, amount), inserted=True)
        if getattr(rec.cmd, "account", None) == account:
            raise ValueError(f"the recorded flow uses account {account}: give the strategy another one")
        runner.flush(rec.ts)
        runner.result.order_ids[rec.in_seq] = runner.engine.in_seq + 1
        runner.apply(rec.ts, _renumbered(rec.cmd, runner.result.order_ids), inserted=False)
    runner.flush(None)
    return runner.result
