"""The gateway's view of open orders and balances, built from the engine's events, and the results of commands.

At start it loads the PostgreSQL persister's tables at one offset (one repeatable-read transaction: open orders,
balances, fee rates, and the offset they reflect), then follows the events stream from that offset with the same
fold the persister uses (persistence.pg_model), so the two never disagree about what an event means. Open orders and
balances are answered from here; closed orders and trades from PostgreSQL (persistence.history).

Each command's events arrive together (one stream entry holds whole commands). The events of recent commands are
kept by in_seq for a while, so a request that was acknowledged with in_seq N gets its result whether the events came
before or after the acknowledgement.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any, Protocol

import asyncpg
import redis.asyncio as aioredis

from gateways.binance.userdata import UserEvent, UserEvents
from gateways.binance.views import Formats
from persistence.pg_model import OPEN_STATUSES, ORDER_COLUMNS, OrderRow, PostgresModel
from persistence.postgres import CONSUMER
from persistence.stream import EventStream, Registry, StreamGap
from wire.events import (
    BalanceChanged,
    Event,
    FeeRatesSet,
    MatchPrevented,
    OrderAccepted,
    OrderCanceled,
    OrderReplaced,
    TradeExecuted,
)
from wire.venue import Venue

log = logging.getLogger("mercury.gateway.live")

KEEP_RESULTS = 100_000
LEASE = 30.0  # s the gateway's registration as a stream reader lasts without a new confirmation
CONFIRM_EVERY = 1.0  # s  # commands whose events are kept for late waiters


class Subscriber(Protocol):
    def push(self, account: int, payload: dict[str, Any]) -> None:
        """Queue one event for the client; never blocks (a client too slow is disconnected instead)."""
        ...


ORDER_EVENTS = frozenset({OrderAccepted, TradeExecuted, OrderCanceled, OrderReplaced, MatchPrevented})


class LiveState:
    def __init__(self, r: aioredis.Redis, pool: asyncpg.Pool, venue: Venue, name: str = "gateway") -> None:
        self.r = r
        self.pool = pool
        self.venue = venue
        self.specs = {s.symbol: s for s in venue.symbols}
        self.stream = EventStream(r, venue.shard)
        self.registry = Registry(r, venue.shard)
        self.name = name
        self.model = PostgresModel(self.specs)
        self.fee_rates: dict[int, tuple[int, int]] = {}
        self.in_seq = 0  # the last command whose events were applied
        self.results: OrderedDict[int, list[Event]] = OrderedDict()
        self.waiters: dict[int, list[asyncio.Future[list[Event] | None]]] = {}
        self.released = False  # the process is stopping: nobody waits for a command's events any more
        self.ready = asyncio.Event()
        # orders changed by recent commands, as they stood after the stream entries that changed them: responses
        # to orders and cancels are built from here (a closed order leaves the open set at once)
        self.recent: OrderedDict[int, OrderRow] = OrderedDict()
        self.subscribers: dict[int, set[Subscriber]] = {}  # account -> its user data streams
        self.user_events = UserEvents(Formats(venue))

    async def load(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            offset = await conn.fetchrow(
                "SELECT stream_id, out_seq FROM consumer_offsets WHERE consumer = $1", CONSUMER
            )
            orders = await conn.fetch(
                f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE status = ANY($1::text[])", list(OPEN_STATUSES)
            )
            balances = await conn.fetch("SELECT account, asset, free, locked FROM balances")
            rates = await conn.fetch("SELECT account, maker_bps, taker_bps FROM accounts WHERE maker_bps IS NOT NULL")
        self.model = PostgresModel(self.specs, (OrderRow(*r) for r in orders), (tuple(r) for r in balances))
        self.fee_rates = {r["account"]: (r["maker_bps"], r["taker_bps"]) for r in rates}
        stream_id, out_seq = (offset["stream_id"], offset["out_seq"]) if offset else ("0-0", 0)
        self.stream.seek(stream_id, out_seq)
        log.info("gateway state loaded at out_seq %d: %d open orders", out_seq, len(self.model.open))

    async def run(self) -> None:
        """Follow the events stream for ever (reload from PostgreSQL after a gap)."""
        while True:
            try:
                await self.load()
                # registered as a reader of the events stream, so that it is not trimmed under this gateway; a
                # lease, so that a gateway that dies does not hold it back for ever
                await self.registry.confirm(self.name, self.stream.out_seq, LEASE)
                self.ready.set()
                next_confirm = time.monotonic() + CONFIRM_EVERY
                while True:
                    chunk = await self.stream.read(256, 1_000)
                    if chunk is not None and chunk.events:
                        self._apply(chunk.events)
                    if time.monotonic() >= next_confirm:
                        next_confirm = time.monotonic() + CONFIRM_EVERY
                        await self.registry.confirm(self.name, self.stream.out_seq, LEASE)
            except StreamGap as exc:
                log.warning("events stream gap (%s): reloading", exc)
            except (OSError, ConnectionError, asyncpg.PostgresError, aioredis.RedisError) as exc:
                log.warning("live state: %s: %s; retrying", type(exc).__name__, exc)
                await asyncio.sleep(0.5)

    def _apply(self, events: list[Event]) -> None:
        if self.subscribers:
            self._apply_publishing(events)
        else:
            self.model.apply(events)
        rows = self.model.take_rows()  # the rows are the persister's business; only the state is kept here
        recent = self.recent
        for record in rows.order_inserts + rows.order_changes:
            recent[record[0]] = OrderRow(*record)
            recent.move_to_end(record[0])
        while len(recent) > KEEP_RESULTS:
            recent.popitem(last=False)
        by_command: dict[int, list[Event]] = {}
        for ev in events:
            by_command.setdefault(ev.in_seq, []).append(ev)
            if type(ev) is FeeRatesSet:
                if ev.maker_bps < 0:
                    self.fee_rates.pop(ev.account, None)
                else:
                    self.fee_rates[ev.account] = (ev.maker_bps, ev.taker_bps)
        results = self.results
        for in_seq, evs in by_command.items():
            results[in_seq] = evs
            for future in self.waiters.pop(in_seq, ()):
                if not future.done():
                    future.set_result(evs)
        while len(results) > KEEP_RESULTS:
            results.popitem(last=False)
        self.in_seq = events[-1].in_seq

    def _apply_publishing(self, events: list[Event]) -> None:
        """Fold event by event, and hand each subscribed account its user data events in engine order: its order
        reports as they happen, a balance update per deposit or withdrawal, then its changed balances once its
        command is done."""
        model, subscribers, users = self.model, self.subscribers, self.user_events
        out: list[UserEvent] = []
        changed: dict[int, dict[str, None]] = {}  # accounts -> assets the current command changed
        in_seq, ts = -1, 0
        for ev in events:
            if ev.in_seq != in_seq:
                self._positions(changed, ts, out)
                in_seq, ts = ev.in_seq, ev.ts
            t = type(ev)
            if t is BalanceChanged:
                assert isinstance(ev, BalanceChanged)
                if ev.account in subscribers:
                    changed.setdefault(ev.account, {})[ev.asset] = None
                    before = model.balances.get((ev.account, ev.asset), (0, 0))
                    update = users.balance_update(ev, ev.free - before[0])
                    if update is not None:
                        out.append(update)
                model.apply((ev,))
                continue
            previous: dict[int, str] = {}  # an amended order's client id before the amendment
            if isinstance(ev, OrderReplaced) and ev.order_id in model.open:
                previous[ev.order_id] = model.open[ev.order_id].client_oid
            model.apply((ev,))
            if t in ORDER_EVENTS:
                out += [u for u in users.of_event(ev, model.rows.orders, previous) if u[0] in subscribers]
        self._positions(changed, ts, out)
        for account, payload in out:
            for subscriber in list(subscribers.get(account, ())):
                subscriber.push(account, payload)

    def _positions(self, changed: dict[int, dict[str, None]], ts: int, out: list[UserEvent]) -> None:
        if not changed:
            return
        self.model.settle()  # the command is complete: its balances are final
        for account, assets in changed.items():
            held = {a: self.model.balances.get((account, a), (0, 0)) for a in assets}
            out.append(self.user_events.positions(account, ts, held))
        changed.clear()

    def subscribe(self, account: int, subscriber: Subscriber) -> None:
        self.subscribers.setdefault(account, set()).add(subscriber)

    def unsubscribe(self, account: int, subscriber: Subscriber) -> None:
        held = self.subscribers.get(account)
        if held is not None:
            held.discard(subscriber)
            if not held:
                del self.subscribers[account]

    async def result(self, in_seq: int, timeout: float) -> list[Event] | None:
        """The events of command ``in_seq``, waiting up to ``timeout`` s; None if they did not come in time."""
        done = self.results.get(in_seq)
        if done is not None or self.released:
            return done
        future: asyncio.Future[list[Event] | None] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(in_seq, []).append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            waiting = self.waiters.get(in_seq)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self.waiters[in_seq]

    def release_waiters(self) -> None:
        """The process is stopping: every request still waiting for its command's events gets None now (an unknown
        outcome for its client, which is the truth: the engine may apply the command after its own restart), and so
        does every later one, so that no request is still running when the server's grace ends and cancels it."""
        self.released = True
        for futures in self.waiters.values():
            for future in futures:
                if not future.done():
                    future.set_result(None)

    # --- queries ---------------------------------------------------------------------------------------------

    @property
    def out_seq(self) -> int:
        """The last event applied: every query answered from PostgreSQL waits until the persister is there."""
        return self.stream.out_seq

    def order(self, account: int, symbol: str, order_id: int | None, client_oid: str | None) -> OrderRow | None:
        """One of the account's orders that is open or changed recently (by id, or by client id: the newest)."""
        row = self.open_order(account, symbol, order_id, client_oid)
        if row is not None:
            return row
        if order_id is not None:
            row = self.recent.get(order_id)
            ok = row is not None and row.account == account and row.symbol == symbol
            return row if ok and (client_oid is None or row.client_oid == client_oid) else None  # type: ignore[union-attr]
        for row in reversed(self.recent.values()):
            if row.account == account and row.symbol == symbol and row.client_oid == client_oid:
                return row
        return None

    def open_orders(self, account: int, symbol: str | None = None) -> list[OrderRow]:
        return sorted(
            (o for o in self.model.open.values() if o.account == account and (symbol is None or o.symbol == symbol)),
            key=lambda o: o.order_id,
        )

    def open_order(self, account: int, symbol: str, order_id: int | None, client_oid: str | None) -> OrderRow | None:
        for o in self.model.open.values():
            if o.account != account or o.symbol != symbol:
                continue
            if (order_id is None or o.order_id == order_id) and (client_oid is None or o.client_oid == client_oid):
                return o
        return None

    def balances(self, account: int) -> dict[str, tuple[int, int]]:
        return {asset: value for (owner, asset), value in self.model.balances.items() if owner == account}
