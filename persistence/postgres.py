"""``python -m persistence.postgres``: the PostgreSQL persister (orders, order history, trades, balances, ledger,
accounts, refusals), consumer ``postgres`` of the events stream.

Each chunk of stream entries is folded (persistence.pg_model) and written in one transaction together with the
consumer's offset: append-only rows by COPY, the orders and balances it changed by COPY into a temporary table and
one upsert. A crash anywhere rolls the transaction back, and the restarted persister starts after the last
committed entry: no row is lost or written twice. One persister per database at a time (an advisory lock; a
second one waits).
"""

from __future__ import annotations

import logging
import sys
import time
import zlib
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass

import asyncpg

from persistence.consumer import run_persister
from persistence.db import connect
from persistence.migrate import migrate
from persistence.pg_model import OPEN_STATUSES, ORDER_COLUMNS, OrderRow, PostgresModel, Rows
from persistence.stream import Chunk, Quarantined
from wire.venue import Venue

log = logging.getLogger("mercury.persistence.postgres")

CONSUMER = "postgres"

UPDATE_COLUMNS = (
    "out_seq", "order_id", "account", "symbol", "ts", "kind", "status", "price", "executed_qty", "leaves",
    "last_qty", "last_price", "trade_id",
)  # fmt: skip
TRADE_COLUMNS = (
    "symbol", "trade_id", "price", "qty", "quote_qty", "taker_side", "maker_order_id", "maker_account", "maker_fee",
    "taker_order_id", "taker_account", "taker_fee", "ts", "out_seq",
)  # fmt: skip
PREVENTED_COLUMNS = (
    "symbol", "match_id", "account", "taker_order_id", "maker_order_id", "price", "mode", "taker_qty", "maker_qty",
    "ts", "out_seq",
)  # fmt: skip
LEDGER_COLUMNS = (
    "out_seq", "line", "in_seq", "ts", "kind", "asset", "amount", "debit_account", "debit_bucket", "credit_account",
    "credit_bucket", "symbol", "trade_id",
)  # fmt: skip
REJECTION_COLUMNS = (
    "out_seq", "in_seq", "ts", "kind", "account", "symbol", "order_id", "client_oid", "asset", "amount", "reason",
    "detail",
)  # fmt: skip
BALANCE_COLUMNS = ("account", "asset", "free", "locked", "out_seq")

# orders that existed before the batch: their new state (one plain UPDATE joined to the staged rows)
UPDATE_ORDERS = (
    "UPDATE orders SET "
    + ", ".join(f"{c} = i.{c}" for c in ORDER_COLUMNS if c not in ("order_id", "created_ts", "created_out_seq"))
    + " FROM orders_in i WHERE orders.order_id = i.order_id"
)
UPSERT_BALANCES = (
    "INSERT INTO balances SELECT * FROM balances_in ON CONFLICT (account, asset) DO UPDATE SET "
    "free = EXCLUDED.free, locked = EXCLUDED.locked, out_seq = EXCLUDED.out_seq"
)
SET_FEE_RATES = "UPDATE accounts SET maker_bps = $2, taker_bps = $3 WHERE account = $1"
QUARANTINE = (
    "INSERT INTO quarantine (consumer, out_seq, stream_id, payload, reason) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT DO NOTHING"
)
SAVE_OFFSET = (
    "INSERT INTO consumer_offsets (consumer, out_seq, stream_id, updated_at) VALUES ($1, $2, $3, now()) "
    "ON CONFLICT (consumer) DO UPDATE SET out_seq = EXCLUDED.out_seq, stream_id = EXCLUDED.stream_id, "
    "updated_at = now()"
)


@dataclass(slots=True)
class PgBatch:
    rows: Rows
    quarantine_rows: list[tuple[str, int | None, str, bytes, str]]
    quarantined: int


class StoreBusy(ConnectionError):
    """Another persister holds this database's consumer lock."""


class PostgresStore:
    transient: tuple[type[Exception], ...] = (
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.exceptions.OperatorInterventionError,  # the server shutting down or starting up
    )

    def __init__(self, url: str, venue: Venue, consumer: str = CONSUMER) -> None:
        self.url = url
        self.venue = venue
        self.consumer = consumer
        self.conn: asyncpg.Connection | None = None
        self.model = PostgresModel({})
        self.timings: defaultdict[str, float] | None = None  # seconds per statement, when measured

    async def open(self) -> tuple[str, int]:
        conn = self.conn = await connect(self.url)
        await migrate(conn)
        # one writer per consumer and database: a second persister would write every row twice
        lock = zlib.crc32(f"mercury consumer {self.consumer}".encode())
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock):
            raise StoreBusy(f"another {self.consumer} persister is writing to this database")
        row = await conn.fetchrow("SELECT stream_id, out_seq FROM consumer_offsets WHERE consumer = $1", self.consumer)
        orders = await conn.fetch(
            f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE status = ANY($1::text[])", list(OPEN_STATUSES)
        )
        balances = await conn.fetch("SELECT account, asset, free, locked FROM balances")
        self.model = PostgresModel(
            {s.symbol: s for s in self.venue.symbols},
            (OrderRow(*r) for r in orders),
            (tuple(r) for r in balances),
        )
        await conn.execute("CREATE TEMP TABLE orders_in (LIKE orders) ON COMMIT DELETE ROWS")
        await conn.execute("CREATE TEMP TABLE balances_in (LIKE balances) ON COMMIT DELETE ROWS")
        return (row["stream_id"], row["out_seq"]) if row else ("0-0", 0)

    def prepare(self, chunk: Chunk) -> PgBatch:
        self.model.apply(chunk.events, chunk.stream_id)
        rows = self.model.take_rows()
        quarantined = [self._quarantine_row(q, chunk) for q in chunk.quarantined + rows.quarantined]
        return PgBatch(rows, quarantined, len(quarantined))

    async def commit(self, batch: PgBatch, stream_id: str, out_seq: int) -> None:
        conn = self.conn
        assert conn is not None
        async with conn.transaction():
            await self._write_rows(conn, batch.rows)
            if batch.quarantine_rows:
                await self._step("quarantine", conn.executemany(QUARANTINE, batch.quarantine_rows))
            await self._step("offset", conn.execute(SAVE_OFFSET, self.consumer, out_seq, stream_id))
            started = time.perf_counter()
        if self.timings is not None:
            self.timings["commit"] += time.perf_counter() - started
        if batch.rows.suspense:
            log.error("%d ledger line(s) booked to suspense: see the quarantine table", batch.rows.suspense)

    def _quarantine_row(self, q: Quarantined, chunk: Chunk) -> tuple[str, int | None, str, bytes, str]:
        return self.consumer, q.out_seq, q.stream_id or chunk.stream_id, q.payload, q.reason

    async def _write_rows(self, conn: asyncpg.Connection, rows: Rows) -> None:
        # one statement per kind of row, each timed when `timings` is set (bench.persisters shows where the time of
        # a commit goes); COPY where rows only arrive, COPY into a staging table + one statement where they change
        step = self._step
        if rows.accounts:
            columns = ("account", "created_ts", "out_seq")
            await step("accounts", conn.copy_records_to_table("accounts", records=rows.accounts, columns=columns))
        if rows.fee_rates:
            await step("fee rates", conn.executemany(SET_FEE_RATES, rows.fee_rates))
        if rows.order_inserts:  # new in this batch: no row to conflict with
            await step("orders: new", conn.copy_records_to_table("orders", records=rows.order_inserts,
                                                                 columns=ORDER_COLUMNS))  # fmt: skip
        if rows.order_changes:
            await step("orders: changed, staged", conn.copy_records_to_table("orders_in", records=rows.order_changes,
                                                                             columns=ORDER_COLUMNS))  # fmt: skip
            await step("orders: changed, updated", conn.execute(UPDATE_ORDERS))
        if rows.order_updates:
            await step("order_updates", conn.copy_records_to_table("order_updates", records=rows.order_updates,
                                                                   columns=UPDATE_COLUMNS))  # fmt: skip
        if rows.trades:
            await step("trades", conn.copy_records_to_table("trades", records=rows.trades, columns=TRADE_COLUMNS))
        if rows.prevented:
            await step("prevented matches", conn.copy_records_to_table("prevented_matches", records=rows.prevented,
                                                                       columns=PREVENTED_COLUMNS))  # fmt: skip
        if rows.ledger:
            await step("ledger", conn.copy_records_to_table("ledger", records=rows.ledger, columns=LEDGER_COLUMNS))
        if rows.balances:
            balances = list(rows.balances.values())
            await step("balances: staged", conn.copy_records_to_table("balances_in", records=balances,
                                                                      columns=BALANCE_COLUMNS))  # fmt: skip
            await step("balances: upserted", conn.execute(UPSERT_BALANCES))
        if rows.rejections:
            await step("rejections", conn.copy_records_to_table("rejections", records=rows.rejections,
                                                                columns=REJECTION_COLUMNS))  # fmt: skip

    async def _step(self, name: str, statement: Awaitable[object]) -> None:
        timings = self.timings
        if timings is None:
            await statement
            return
        started = time.perf_counter()
        await statement
        timings[name] += time.perf_counter() - started

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            await conn.close(timeout=2)  # also frees the advisory lock


def main() -> int:
    return run_persister(lambda settings, venue: PostgresStore(settings.postgres_url, venue))


if __name__ == "__main__":
    sys.exit(main())
