"""Klines from trades, without a database: the model's closed klines equal a brute-force aggregation of the ticks,
also when it is rebuilt from its stored documents at random points (as a restarted persister is)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from persistence.klines import INTERVALS, SECOND, WIDTH, Doc, Kline, KlineModel, rebuild
from tests.engine.test_properties import ENGINE_PROFILE
from tests.stubs import BTC, ETH
from wire.enums import Side
from wire.events import BookDelta, Event, TradeExecuted
from wire.venue import SymbolSpec

SPECS = {s.symbol: s for s in (BTC, ETH)}
T0 = 1_800_000_000 * SECOND


@st.composite
def flows(draw: st.DrawFn) -> tuple[list[Event], list[int]]:
    """Trades and book deltas with non-decreasing stamps: gaps from nothing up to over an hour; and restart points."""
    events: list[Event] = []
    ts = T0 + draw(st.integers(0, 86_400)) * SECOND
    trade_ids = {"BTC": 0, "ETH": 0}
    for out_seq in range(1, draw(st.integers(1, 120)) + 1):
        ts += draw(st.sampled_from([0, 0, 1, SECOND // 3, SECOND, 7 * SECOND, 61 * SECOND, 4_000 * SECOND]))
        symbol = draw(st.sampled_from(["BTC", "ETH"]))
        if draw(st.integers(0, 4)) == 0:
            events.append(BookDelta(out_seq, out_seq, ts, symbol, out_seq, Side.BUY, 100, 1))
            continue
        trade_ids[symbol] += 1
        price, qty = draw(st.integers(90, 110)), draw(st.integers(1, 9))
        side = draw(st.sampled_from([Side.BUY, Side.SELL]))
        events.append(
            TradeExecuted(out_seq, out_seq, ts, symbol, trade_ids[symbol], price, qty, side, 1, 1, 0, 2, 2, 0)
        )
    restarts = sorted(draw(st.sets(st.integers(1, len(events)), max_size=4)))
    return events, restarts


class Stored:
    """What the persister writes: documents by _id, and its offset."""

    def __init__(self) -> None:
        self.ticks: dict[str, Doc] = {}
        self.klines: dict[str, Doc] = {}
        self.out_seq = 0
        self.now = 0

    def reload(self) -> KlineModel:
        """persistence.mongo.MongoStore._open_klines, on dicts."""
        opened: list[Kline] = []
        for symbol in SPECS:
            mine = [t for t in self.ticks.values() if t["symbol"] == symbol and t["out_seq"] <= self.out_seq]
            if not mine:
                continue
            ts = max(mine, key=lambda t: t["out_seq"])["ts"]
            last = sorted((t for t in mine if t["ts"] >= ts - ts % SECOND), key=lambda t: t["out_seq"])
            closed: dict[str, list[Doc]] = {}
            for (shorter, width), (_, longer) in itertools.pairwise(INTERVALS):
                closed[shorter] = sorted(
                    (
                        k
                        for k in self.klines.values()
                        if k["symbol"] == symbol
                        and k["interval"] == shorter
                        and ts - ts % longer <= k["open_time"] < ts - ts % width
                    ),
                    key=lambda k: k["open_time"],
                )
            opened += rebuild(symbol, last, closed)
        return KlineModel(SPECS, opened, self.now)


def brute_force(
    events: Sequence[Event], now: int, specs: Mapping[str, SymbolSpec] = SPECS
) -> dict[str, dict[str, Any]]:
    """Every kline whose window ended by ``now``, from the trades directly."""
    groups: defaultdict[tuple[str, str, int], list[TradeExecuted]] = defaultdict(list)
    for ev in events:
        if isinstance(ev, TradeExecuted):
            for interval, width in INTERVALS:
                groups[(ev.symbol, interval, ev.ts - ev.ts % width)].append(ev)
    out: dict[str, dict[str, Any]] = {}
    for (symbol, interval, open_time), trades in groups.items():
        if open_time + WIDTH[interval] > now:
            continue
        qptl = specs[symbol].quote_per_tick_lot
        quotes = [t.price * t.qty * qptl for t in trades]
        doc: dict[str, Any] = {
            "_id": f"{symbol}:{interval}:{open_time}",
            "symbol": symbol,
            "interval": interval,
            "open_time": open_time,
            "close_time": open_time + WIDTH[interval] - 1,
            "open": trades[0].price,
            "high": max(t.price for t in trades),
            "low": min(t.price for t in trades),
            "close": trades[-1].price,
            "volume": sum(t.qty for t in trades),
            "quote_volume": sum(quotes),
            "trades": len(trades),
            "taker_buy_volume": sum(t.qty for t in trades if t.taker_side is Side.BUY),
            "taker_buy_quote_volume": sum(q for t, q in zip(trades, quotes, strict=True) if t.taker_side is Side.BUY),
            "first_trade_id": trades[0].trade_id,
            "last_trade_id": trades[-1].trade_id,
            "bucket": open_time // (WIDTH[interval] * 1_000),  # the store's reads go by it (persistence.buckets)
        }
        out[doc["_id"]] = doc
    return out


@ENGINE_PROFILE
@given(flows(), st.integers(1, 9))
def test_closed_klines_equal_the_ticks_aggregated_also_across_restarts(
    flow: tuple[list[Event], list[int]], chunk: int
) -> None:
    events, restarts = flow
    stored = Stored()
    model = KlineModel(SPECS)
    for start in range(0, len(events), chunk):
        part = events[start : start + chunk]
        assert model.apply(part) == []
        ticks, closed = model.take()
        for doc in ticks:
            stored.ticks[doc["_id"]] = doc
        for doc in closed:
            stored.klines[doc["_id"]] = doc
        stored.out_seq, stored.now = part[-1].out_seq, part[-1].ts
        if any(start < r <= start + chunk for r in restarts):
            model = stored.reload()
    assert stored.klines == brute_force(events, events[-1].ts)
    assert len(stored.ticks) == sum(1 for ev in events if isinstance(ev, TradeExecuted))


def test_a_crash_after_documents_before_the_offset_rewrites_the_same_documents() -> None:
    trades = [
        TradeExecuted(i, i, T0 + i * SECOND // 2, "BTC", i, 100 + i, 1, Side.BUY, 1, 1, 0, 2, 2, 0) for i in range(1, 9)
    ]
    stored = Stored()
    model = KlineModel(SPECS)
    model.apply(trades[:4])
    ticks, closed = model.take()
    for doc in ticks:
        stored.ticks[doc["_id"]] = doc
    for doc in closed:
        stored.klines[doc["_id"]] = doc
    stored.out_seq, stored.now = 4, trades[3].ts
    model.apply(trades[4:])  # written, but the offset never was: the process died
    ticks, closed = model.take()
    for doc in ticks:
        stored.ticks[doc["_id"]] = doc
    for doc in closed:
        stored.klines[doc["_id"]] = doc
    ahead = dict(stored.klines)
    again = stored.reload()  # restarts at out_seq 4 and applies 5..8 again
    again.apply(trades[4:])
    _, closed_again = again.take()
    assert closed_again  # klines closed by trades 5..8, written again
    assert all(ahead[d["_id"]] == d for d in closed_again)
    assert ahead == brute_force(trades, trades[-1].ts)


def test_a_clean_restart_writes_no_kline_twice() -> None:
    """The last trade's 1s kline was closed by a later event (a book change) that the offset covers: the restarted
    model must not hold it open and close it again (each would be a second insert of a stored kline)."""
    trade = TradeExecuted(1, 1, T0 + SECOND // 4, "BTC", 1, 100, 1, Side.BUY, 1, 1, 0, 2, 2, 0)
    later = BookDelta(2, 2, T0 + 3 * SECOND // 2, "BTC", 1, Side.BUY, 100, 0)
    stored = Stored()
    model = KlineModel(SPECS)
    model.apply([trade, later])
    ticks, closed = model.take()
    assert [d["interval"] for d in closed] == ["1s"]
    stored.ticks = {d["_id"]: d for d in ticks}
    stored.klines = {d["_id"]: d for d in closed}
    stored.out_seq, stored.now = 2, later.ts
    again = stored.reload()
    again.apply([BookDelta(3, 3, T0 + 90_000 * SECOND, "BTC", 2, Side.BUY, 100, 0)])  # past every window
    _, closed_again = again.take()
    assert [d["interval"] for d in closed_again] == ["1m", "5m", "15m", "1h", "1d"]  # not the 1s one again
    assert not set(stored.klines) & {d["_id"] for d in closed_again}


def test_a_trade_of_an_unknown_symbol_is_returned_for_quarantine() -> None:
    stray = TradeExecuted(1, 1, T0, "DOGE", 1, 100, 1, Side.BUY, 1, 1, 0, 2, 2, 0)
    model = KlineModel(SPECS)
    assert model.apply([stray]) == [stray]
    assert model.take() == ([], [])
