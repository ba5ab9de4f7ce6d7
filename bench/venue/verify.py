"""No acknowledged order missing: each new order answered 200 (its orderId is the in_seq the sequencer journaled it
at) must be in the journal at that in_seq, as this load sent it, exactly once; and in PostgreSQL's ``orders`` table
(or, had the engine refused it, in ``rejections``) once the persister has caught up. A cancel answered -2011 must
name an order that PostgreSQL shows closed (another trader filled it first), never one still open.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
import numpy as np
import redis

from bench.venue.accounts import Trader
from bench.venue.flow import CANCEL, NEW
from bench.venue.tally import CANCEL_RACED, Requests
from engine.events_stream import last_out_seq
from sequencer.journal import Journal
from wire import keys
from wire.commands import PlaceOrder
from wire.config import Settings

OPEN = ("NEW", "PARTIALLY_FILLED")


@dataclass
class Verdict:
    acked: int = 0
    in_journal: int = 0  # at their orderId, with this run's client order id and account
    journaled_twice: int = 0  # client order ids of this run journaled more than once
    acked_twice: int = 0  # orderIds answered to two requests
    in_postgres: int = 0  # in orders, or refused by the engine (rejections)
    refused_by_engine: int = 0
    raced_cancels: int = 0  # cancels answered -2011
    raced_cancels_closed: int = 0  # ... whose order PostgreSQL shows closed
    unknown: int = 0  # new orders answered without an orderId (502, 503 -1007, a connection error, no answer)
    unknown_journaled: int = 0  # ... that the journal holds all the same (a client finds them by clientOrderId)
    persister_waited_s: float = 0.0
    persister_caught_up: bool = False
    missing: list[int] = field(default_factory=list)  # a few orderIds not found, for the report

    @property
    def ok(self) -> bool:
        return (self.in_journal == self.acked == self.in_postgres and not self.journaled_twice
                and not self.acked_twice and self.raced_cancels_closed == self.raced_cancels)  # fmt: skip

    def lines(self) -> list[str]:
        return [
            f"acknowledged new orders: {self.acked:,}",
            f"  in the journal at their orderId, as sent: {self.in_journal:,} / {self.acked:,}",
            f"  client order ids journaled twice: {self.journaled_twice}; orderIds acknowledged twice: "
            f"{self.acked_twice}",
            f"  in PostgreSQL after {self.persister_waited_s:.1f} s (persister "
            f"{'caught up' if self.persister_caught_up else 'NOT caught up'}): {self.in_postgres:,} / {self.acked:,}"
            f" ({self.refused_by_engine:,} of them refused by the engine, in rejections)",
            f"  cancels answered -2011 (the order had left the book): {self.raced_cancels}, of orders closed or "
            f"refused by the engine in PostgreSQL: {self.raced_cancels_closed}",
            *([f"  missing (first few): {self.missing[:10]}"] if self.missing else []),
            *(
                [
                    f"new orders answered without an orderId (502, 503 -1007, connection lost): {self.unknown:,}; "
                    f"of these, journaled all the same: {self.unknown_journaled:,}, not journaled: "
                    f"{self.unknown - self.unknown_journaled:,}"
                ]
                if self.unknown
                else []
            ),
        ]


def _fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def _refusals(req: Requests) -> list[int]:
    """Status indexes of answers that say the order was not taken (any 4xx: refused before the sequencer)."""
    return [i for i, c in enumerate(req.classes) if c[:1] == "4"]


def wait_persisted(settings: Settings, shard: str, pg_url: str, timeout: float) -> tuple[bool, float]:
    """Until PostgreSQL's offset reaches the events stream's end as it is now; (caught up, seconds waited)."""
    r = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    try:
        target = last_out_seq(r, keys.events(shard))
    finally:
        r.close()
    t0 = time.monotonic()
    while True:
        rows = _fetch(pg_url, "SELECT out_seq FROM consumer_offsets WHERE consumer = 'postgres'")
        if rows and rows[0]["out_seq"] >= target:
            return True, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return False, time.monotonic() - t0
        time.sleep(0.2)


def verify(req: Requests, traders: list[Trader], run_tag: str, settings: Settings, shard: str, pg_url: str,
           timeout: float = 120.0) -> Verdict:  # fmt: skip
    v = Verdict()
    acked = req.acked_orders()
    ids = req.order_id[acked]
    index = req.index[acked]
    who = req.who[acked]
    v.acked = len(ids)
    v.acked_twice = int(len(ids) - len(np.unique(ids)))
    expected = {int(i): (f"{run_tag}-{int(k):x}", traders[int(w)].account)
                for i, k, w in zip(ids.tolist(), index.tolist(), who.tolist(), strict=True)}  # fmt: skip
    # the journal: every command from the first acknowledged one on
    r = redis.Redis.from_url(settings.redis_url, socket_timeout=30)
    ours: Counter[str] = Counter()
    found = 0
    try:
        start = int(ids.min()) if len(ids) else Journal(r, keys.journal(shard)).last_in_seq() + 1
        prefix = run_tag + "-"
        for batch in Journal(r, keys.journal(shard)).read_from(start):
            for i, cmd in enumerate(batch.cmds):
                if type(cmd) is not PlaceOrder or not cmd.client_oid.startswith(prefix):
                    continue
                ours[cmd.client_oid] += 1
                want = expected.get(batch.first_in_seq + i)
                if want is not None and want == (cmd.client_oid, cmd.account):
                    found += 1
    finally:
        r.close()
    v.in_journal = found
    v.journaled_twice = sum(1 for n in ours.values() if n > 1)
    # outcome unknown to the client: a Binance client would look such an order up by its clientOrderId
    no_id = (req.kind == NEW) & ~req.ok() & (req.sent > 0) & ~np.isin(req.status, _refusals(req))
    v.unknown = int(no_id.sum())
    v.unknown_journaled = sum(1 for k in req.index[no_id].tolist() if ours[f"{run_tag}-{k:x}"])
    # PostgreSQL, once the persister has caught up with the events as they are now
    v.persister_caught_up, v.persister_waited_s = wait_persisted(settings, shard, pg_url, timeout)
    id_list = [int(i) for i in ids.tolist()]
    stored = {
        r["order_id"]: r["client_oid"]
        for r in _fetch(pg_url, "SELECT order_id, client_oid FROM orders WHERE order_id = ANY($1::bigint[])", id_list)
    }
    refused: set[int] = {r["in_seq"] for r in _fetch(pg_url, "SELECT in_seq FROM rejections WHERE kind = 'ORDER' AND "
                                                   "in_seq = ANY($1::bigint[])", id_list)}  # fmt: skip
    v.refused_by_engine = len(refused)
    missing = [i for i in id_list if stored.get(i) != expected[i][0] and i not in refused]
    v.in_postgres = len(id_list) - len(missing)
    v.missing = missing[:20]
    # cancels answered -2011: their order must have left the book (filled or canceled) by someone else's doing
    if CANCEL_RACED in req.classes:
        raced = (req.kind == CANCEL) & (req.status == req.classes.index(CANCEL_RACED))
        targets = [int(t) for t in req.order_id[raced].tolist()]
        v.raced_cancels = len(targets)
        if targets:
            rows = _fetch(pg_url, "SELECT order_id, status FROM orders WHERE order_id = ANY($1::bigint[])", targets)
            closed = {r["order_id"] for r in rows if r["status"] not in OPEN}
            closed |= refused  # acknowledged (journaled) and then refused by the engine: it never rested
            v.raced_cancels_closed = sum(1 for t in targets if t in closed)
    return v
