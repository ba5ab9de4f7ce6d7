"""A known market for the research tests: trades folded by the persister's own KlineModel into the tick and kline
documents it would store, inserted into a real MongoDB-protocol server."""

from __future__ import annotations

import random
from typing import Any

import pymongo

from persistence.klines import Doc, KlineModel
from persistence.mongo import CONSUMER
from persistence.mongo_layout import LAYOUT, META
from wire.enums import Side
from wire.events import TradeExecuted
from wire.venue import DEFAULT_VENUE, load_venue

SPECS = {s.symbol: s for s in load_venue(DEFAULT_VENUE).symbols}
T0 = 1_700_000_000 * 1_000_000_000  # ns, on a day boundary's grid of seconds
Db = pymongo.database.Database[dict[str, Any]]


def trade(symbol: str, trade_id: int, out_seq: int, ts: int, price: int, qty: int, buy: bool) -> TradeExecuted:
    side = Side.BUY if buy else Side.SELL
    return TradeExecuted(out_seq, out_seq, ts, symbol, trade_id, price, qty, side, 1, 1, 0, 2, 2, 0)


def walk(
    symbol: str,
    n: int,
    seed: int,
    start_id: int = 1,
    start_ts: int = T0,
    price: int = 3_000_000,
    step_ns: int = 700_000_000,
) -> list[TradeExecuted]:
    """``n`` trades of a random walk, one every ``step_ns`` on average; out_seq is 3 x trade id (other events
    between trades)."""
    rng = random.Random(seed)
    trades, ts = [], start_ts
    for i in range(n):
        ts += rng.randint(1, 2 * step_ns)
        price = max(1, price + rng.randint(-300, 300))
        tid = start_id + i
        trades.append(trade(symbol, tid, 3 * tid, ts, price, rng.randint(1, 500), rng.random() < 0.5))
    return trades


def fold(model: KlineModel, trades: list[TradeExecuted]) -> tuple[list[Doc], list[Doc]]:
    model.apply(trades)
    return model.take()


def insert(db: Db, ticks: list[Doc], klines: list[Doc]) -> None:
    if ticks:
        db.ticks.insert_many(ticks)
    for k in klines:
        db.klines.replace_one({"_id": k["_id"]}, k, upsert=True)


def mark_current(db: Db, last: TradeExecuted) -> None:
    """What the MongoDB persister leaves beside its documents once it has stored up to the trade ``last``: the layout
    they are in (readers then walk them by bucket) and its offset (its clock, each symbol's last trade id)."""
    db.meta.replace_one(META, {"version": LAYOUT}, upsert=True)
    offset = db.consumer_offsets.find_one({"_id": CONSUMER}) or {"trade_ids": {}}
    offset |= {"ts": last.ts, "out_seq": last.out_seq}
    offset["trade_ids"][last.symbol] = last.trade_id
    db.consumer_offsets.replace_one({"_id": CONSUMER}, offset, upsert=True)


def client(url: str) -> pymongo.MongoClient[dict[str, Any]]:
    return pymongo.MongoClient(url, serverSelectionTimeoutMS=5_000)
