"""History queries the gateways call: an account's orders (open and closed) and trades, from PostgreSQL.

Shaped after Binance's ``GET /api/v3/order``, ``/openOrders``, ``/allOrders``, ``/myTrades`` and
``/myPreventedMatches``: an account sees
only its own rows, results come in ascending id order, ``limit`` is 1..1000 (500 by default), and times are the
sequencer's stamps in ns (the gateway converts Binance's ms). Paging: ask again with ``from_id`` = the last id + 1,
or narrow the time window; without either, the newest ``limit`` rows are returned.

Read-your-writes (design note 6): the tables reflect the events up to the persister's offset, so a gateway that
answered a request at out_seq N calls ``wait_until(N)`` before it reads history for the same client.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import asyncpg

from persistence.pg_model import OPEN_STATUSES, ORDER_COLUMNS, OrderRow
from persistence.postgres import CONSUMER
from wire.venue import SymbolSpec, Venue

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000

Executor = asyncpg.Pool | asyncpg.Connection


class HistoryError(ValueError):
    """A query the caller must correct (the gateway answers it as a bad parameter)."""


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade from one account's side, as Binance's myTrades lists it."""

    symbol: str
    trade_id: int
    order_id: int
    price: int  # ticks
    qty: int  # lots
    quote_qty: int  # quote units
    commission: int  # units of commission_asset
    commission_asset: str
    ts: int
    is_buyer: bool
    is_maker: bool
    out_seq: int


@dataclass(frozen=True, slots=True)
class PreventedMatch:
    """A self-trade stop between two of the account's orders, as Binance's myPreventedMatches lists it."""

    symbol: str
    match_id: int
    taker_order_id: int
    maker_order_id: int
    price: int  # ticks
    mode: str  # the taker's self-trade prevention mode
    taker_qty: int  # lots expired of the taker (0: none)
    maker_qty: int  # ... of the maker
    ts: int


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    out_seq: int
    ts: int
    kind: str
    status: str
    price: int
    executed_qty: int
    leaves: int
    last_qty: int
    last_price: int
    trade_id: int | None


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise HistoryError(f"limit must be 1..{MAX_LIMIT}, not {limit}")
    return limit


def _window(start_ts: int | None, end_ts: int | None) -> None:
    if start_ts is not None and end_ts is not None and end_ts < start_ts:
        raise HistoryError("the end of the time window is before its start")


_ORDER_SELECT = f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders"
_TRADE_SELECT = (
    "SELECT symbol, trade_id, price, qty, quote_qty, taker_side, maker_order_id, maker_account, maker_fee, "
    "taker_order_id, taker_account, taker_fee, ts, out_seq FROM trades"
)


class History:
    def __init__(self, db: Executor, venue: Venue) -> None:
        self.db = db
        self.specs: dict[str, SymbolSpec] = {s.symbol: s for s in venue.symbols}

    async def applied(self) -> int:
        """The out_seq the tables reflect."""
        value = await self.db.fetchval("SELECT out_seq FROM consumer_offsets WHERE consumer = $1", CONSUMER)
        return int(value or 0)

    async def wait_until(self, out_seq: int, timeout: float = 2.0) -> bool:
        """Wait (bounded) until the tables reflect ``out_seq``; False if they did not within ``timeout``."""
        deadline = time.monotonic() + timeout
        delay = 0.002
        while await self.applied() < out_seq:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        return True

    def _spec(self, symbol: str) -> SymbolSpec:
        spec = self.specs.get(symbol)
        if spec is None:
            raise HistoryError(f"unknown symbol {symbol!r}")
        return spec

    # --- orders --------------------------------------------------------------------------------------------

    async def order(
        self, account: int, symbol: str, order_id: int | None = None, client_oid: str | None = None
    ) -> OrderRow | None:
        """One of the account's orders by id, or by client order id (the newest order that used it: client ids
        are unique only among open orders)."""
        self._spec(symbol)
        if order_id is not None:
            row = await self.db.fetchrow(
                f"{_ORDER_SELECT} WHERE order_id = $1 AND account = $2 AND symbol = $3", order_id, account, symbol
            )
            if row is not None and client_oid is not None and row["client_oid"] != client_oid:
                return None
        elif client_oid is not None:
            row = await self.db.fetchrow(
                f"{_ORDER_SELECT} WHERE account = $1 AND symbol = $2 AND client_oid = $3 ORDER BY order_id DESC "
                "LIMIT 1",
                account,
                symbol,
                client_oid,
            )
        else:
            raise HistoryError("either an order id or a client order id is required")
        return None if row is None else OrderRow(*row)

    async def open_orders(self, account: int, symbol: str | None = None) -> list[OrderRow]:
        """The account's open orders (of one symbol, or all), oldest first."""
        statuses = list(OPEN_STATUSES)
        if symbol is None:
            rows = await self.db.fetch(
                f"{_ORDER_SELECT} WHERE account = $1 AND status = ANY($2::text[]) ORDER BY order_id", account, statuses
            )
        else:
            self._spec(symbol)
            rows = await self.db.fetch(
                f"{_ORDER_SELECT} WHERE account = $1 AND symbol = $2 AND status = ANY($3::text[]) ORDER BY order_id",
                account,
                symbol,
                statuses,
            )
        return [OrderRow(*r) for r in rows]

    async def orders(
        self,
        account: int,
        symbol: str,
        *,
        from_id: int | None = None,
        start_ts: int | None = None,
        end_ts: int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[OrderRow]:
        """The account's orders of ``symbol``, open and closed, ascending by id: from ``from_id`` on when given,
        else created within [start_ts, end_ts] when given, else the newest ``limit``."""
        self._spec(symbol)
        _window(start_ts, end_ts)
        rows = await self._page(
            _ORDER_SELECT, "order_id", "created_ts", "account = $1 AND symbol = $2", [account, symbol],
            from_id, start_ts, end_ts, _limit(limit),
        )  # fmt: skip
        return [OrderRow(*r) for r in rows]

    async def order_updates(self, account: int, order_id: int) -> list[OrderUpdate]:
        """Every change of one of the account's orders, in order."""
        rows = await self.db.fetch(
            "SELECT out_seq, ts, kind, status, price, executed_qty, leaves, last_qty, last_price, trade_id "
            "FROM order_updates WHERE order_id = $1 AND account = $2 ORDER BY out_seq",
            order_id,
            account,
        )
        return [OrderUpdate(*r) for r in rows]

    # --- trades --------------------------------------------------------------------------------------------

    async def trades(
        self,
        account: int,
        symbol: str,
        *,
        order_id: int | None = None,
        from_id: int | None = None,
        start_ts: int | None = None,
        end_ts: int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[Fill]:
        """The account's fills of ``symbol``, ascending by trade id; ``order_id``: only that order's."""
        spec = self._spec(symbol)
        _window(start_ts, end_ts)
        where, args = "symbol = $1 AND (maker_account = $2 OR taker_account = $2)", [symbol, account]
        if order_id is not None:
            where += " AND (maker_order_id = $3 OR taker_order_id = $3)"
            args.append(order_id)
        rows = await self._page(_TRADE_SELECT, "trade_id", "ts", where, args, from_id, start_ts, end_ts, _limit(limit))
        fills = []
        for row in rows:
            fills.append(_fill(row, account, spec, row["maker_account"] == account))
            if row["maker_account"] == row["taker_account"]:  # a self-trade (mode NONE): both sides are the account's
                fills.append(_fill(row, account, spec, False))
        if order_id is not None:  # one side of each trade is the order's
            return [f for f in fills if f.order_id == order_id]
        return _trimmed(fills, limit, newest=from_id is None and start_ts is None)

    # --- prevented matches ---------------------------------------------------------------------------------

    async def prevented_matches(
        self,
        account: int,
        symbol: str,
        *,
        match_id: int | None = None,
        order_id: int | None = None,
        from_id: int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[PreventedMatch]:
        """The account's prevented matches of ``symbol``, ascending by id: the one ``match_id``, or those of
        ``order_id`` (as taker or maker) from ``from_id`` on. Binance's parameter combinations: an id or an order,
        and ``from_id`` only with an order."""
        self._spec(symbol)
        where, args = "account = $1 AND symbol = $2", [account, symbol]
        if match_id is not None:
            if order_id is not None or from_id is not None:
                raise HistoryError("preventedMatchId cannot be combined with orderId or fromPreventedMatchId")
            where += " AND match_id = $3"
            args.append(match_id)
        elif order_id is not None:
            where += " AND (taker_order_id = $3 OR maker_order_id = $3)"
            args.append(order_id)
            if from_id is not None:
                where += " AND match_id >= $4"
                args.append(from_id)
        else:
            raise HistoryError("either preventedMatchId or orderId is required")
        args.append(_limit(limit))
        rows = await self.db.fetch(
            "SELECT symbol, match_id, taker_order_id, maker_order_id, price, mode, taker_qty, maker_qty, ts "
            f"FROM prevented_matches WHERE {where} ORDER BY match_id LIMIT ${len(args)}",
            *args,
        )
        return [PreventedMatch(*r) for r in rows]

    async def _page(
        self,
        select: str,
        id_column: str,
        ts_column: str,
        where: str,
        args: list[Any],
        from_id: int | None,
        start_ts: int | None,
        end_ts: int | None,
        limit: int,
    ) -> list[asyncpg.Record]:
        conditions = [where]
        if from_id is not None:
            args.append(from_id)
            conditions.append(f"{id_column} >= ${len(args)}")
        if start_ts is not None:
            args.append(start_ts)
            conditions.append(f"{ts_column} >= ${len(args)}")
        if end_ts is not None:
            args.append(end_ts)
            conditions.append(f"{ts_column} <= ${len(args)}")
        args.append(limit)
        newest = from_id is None and start_ts is None
        order = "DESC" if newest else "ASC"  # the newest page is read backwards, then turned around
        query = f"{select} WHERE {' AND '.join(conditions)} ORDER BY {id_column} {order} LIMIT ${len(args)}"
        rows = await self.db.fetch(query, *args)
        return rows[::-1] if newest else rows


def _trimmed(fills: list[Fill], limit: int, newest: bool) -> list[Fill]:
    """At most ``limit`` of ``fills`` (the ``limit`` trades read, a self-trade twice): the first ones, or the last
    for the newest page; never half a self-trade, so a next page from the last trade id + 1 (or a previous one up to
    the first - 1) misses neither side. Only a page of one self-trade with ``limit`` 1 holds both sides (empty, it
    would leave a client paging by id stuck)."""
    if len(fills) <= limit:
        return fills
    if newest:
        kept = fills[-limit:]
        if kept[0].trade_id == fills[-limit - 1].trade_id:
            kept = kept[1:]
        return kept or fills[-2:]
    kept = fills[:limit]
    if kept[-1].trade_id == fills[limit].trade_id:
        kept = kept[:-1]
    return kept or fills[:2]


def _fill(row: asyncpg.Record, account: int, spec: SymbolSpec, is_maker: bool) -> Fill:
    taker_buys = row["taker_side"] == "BUY"
    is_buyer = taker_buys != is_maker
    return Fill(
        symbol=row["symbol"],
        trade_id=row["trade_id"],
        order_id=row["maker_order_id"] if is_maker else row["taker_order_id"],
        price=row["price"],
        qty=row["qty"],
        quote_qty=row["quote_qty"],
        commission=row["maker_fee"] if is_maker else row["taker_fee"],
        commission_asset=spec.base if is_buyer else spec.quote,
        ts=row["ts"],
        is_buyer=is_buyer,
        is_maker=is_maker,
        out_seq=row["out_seq"],
    )
