"""What the trade, kline and ticker streams (and the REST endpoints beside them) say equals what the engine did: every
trade in order, candles recomputed from the engine's own trade events, and ccxt.pro's watchers agree."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from decimal import Decimal
from typing import Any

import pymongo
import pytest
from binance.client import Client
from websockets.asyncio.client import connect

from persistence.klines import WIDTH, Kline
from tests.feeds.conftest import Feed, Flow, engine_events, trades_of
from tests.feeds.test_books import flow_in_background, pro_client
from tests.harness import wait_for
from wire.enums import Side
from wire.events import TradeExecuted
from wire.venue import DEFAULT_VENUE, load_venue

SPEC = {s.symbol: s for s in load_venue(DEFAULT_VENUE).symbols}["BTCUSDT"]
NS_PER_MS = 1_000_000


def price(ticks: int) -> str:
    """As Binance writes it: padded to the quote asset's 8 decimals (USDT)."""
    return format(SPEC.ticks_to_price(ticks), ".8f")


def qty(lots: int) -> str:
    return format(SPEC.lots_to_qty(lots), ".8f")  # the base asset's 8 (BTC)


def recomputed(trades: list[TradeExecuted], interval: str) -> dict[int, Kline]:
    """Candles with trades, by open time (ms), folded straight from the engine's trade events."""
    width = WIDTH[interval]
    out: dict[int, Kline] = {}
    for ev in trades:
        start = ev.ts - ev.ts % width
        k = out.setdefault(start // NS_PER_MS, Kline.empty("BTCUSDT", interval, start))
        k.add(ev.price, ev.qty, ev.price * ev.qty * SPEC.quote_per_tick_lot, ev.taker_side is Side.BUY, ev.trade_id)
    return out


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


async def collect(feed: Feed, streams: list[str], running: threading.Thread, last_trade: list[int],
                  linger: float) -> list[dict[str, Any]]:  # fmt: skip
    """Every combined-stream message until the flow ended, its last trade arrived, and ``linger`` s more."""
    got: list[dict[str, Any]] = []
    async with connect(f"{feed.ws}/stream?streams={'/'.join(streams)}", max_queue=None) as ws:
        deadline: float | None = None
        while deadline is None or time.monotonic() < deadline:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                got.append(message)
            except TimeoutError:
                pass
            if deadline is None and not running.is_alive() and last_trade:
                seen = [m["data"]["t"] for m in got if m["stream"].endswith("@trade")]
                if seen and seen[-1] >= last_trade[0]:
                    deadline = time.monotonic() + linger
    return got


@pytest.mark.timeout(120)
def test_trades_and_klines_from_the_streams_equal_those_recomputed_from_the_engines_trades(feed: Feed) -> None:
    flow = Flow(feed.venue, seed=3)
    flow.step(100)
    streams = ["btcusdt@trade", "btcusdt@aggTrade", "btcusdt@kline_1s", "btcusdt@kline_1m"]
    running = flow_in_background(flow, 25, 20, 0.1)
    last_trade: list[int] = []

    def watch_end() -> None:
        running.join()
        feed.venue.wait_engine(flow.last_in_seq)
        last_trade.append(trades_of(engine_events(feed.venue), "BTCUSDT")[-1].trade_id)

    threading.Thread(target=watch_end).start()
    got = asyncio.run(collect(feed, streams, running, last_trade, linger=1.5))
    trades = trades_of(engine_events(feed.venue), "BTCUSDT")
    first_seen = next(m["data"]["t"] for m in got if m["stream"] == "btcusdt@trade")
    expected = [ev for ev in trades if ev.trade_id >= first_seen]

    streamed = [m["data"] for m in got if m["stream"] == "btcusdt@trade"]
    assert [(t["t"], t["p"], t["q"], t["m"], t["T"]) for t in streamed] == [
        (ev.trade_id, price(ev.price), qty(ev.qty), ev.taker_side is Side.SELL, ev.ts // NS_PER_MS) for ev in expected
    ]
    aggs = [m["data"] for m in got if m["stream"] == "btcusdt@aggTrade"]
    covered = [i for a in aggs for i in range(a["f"], a["l"] + 1)]
    assert covered == [ev.trade_id for ev in trades if ev.trade_id >= aggs[0]["f"]]
    by_id = {ev.trade_id: ev for ev in trades}
    for a in aggs:  # one taker order at one price each, quantities summed
        group = [by_id[i] for i in range(a["f"], a["l"] + 1)]
        assert {(ev.taker_order_id, ev.price) for ev in group} == {(group[0].taker_order_id, group[0].price)}
        assert Decimal(a["q"]) == SPEC.lots_to_qty(sum(ev.qty for ev in group))

    for interval in ("1s", "1m"):
        final: dict[int, dict[str, Any]] = {}
        for m in got:
            if m["stream"] == f"btcusdt@kline_{interval}":
                final[m["data"]["k"]["t"]] = m["data"]["k"]  # the last state of each candle
        want = recomputed(trades, interval)
        complete = [t for t in sorted(final) if final[t]["n"] and final[t]["f"] == want[t].first_trade_id]
        assert complete, interval
        previous_close: str | None = None
        for t in sorted(final):
            k = final[t]
            if k["n"] == 0:  # a silent interval: flat at the last close
                assert k["o"] == k["h"] == k["l"] == k["c"] and k["v"] == "0.00000000", k
                if previous_close is not None:
                    assert k["c"] == previous_close
            elif t in complete:
                w = want[t]
                assert (k["o"], k["h"], k["l"], k["c"], k["v"], k["n"], k["L"]) == (
                    price(w.open), price(w.high), price(w.low), price(w.close), qty(w.volume), w.trades,
                    w.last_trade_id)  # fmt: skip
            previous_close = k["c"]
        closed = [t for t in sorted(final) if final[t]["x"]]
        assert closed == sorted(final)[: len(closed)], "candles close in order, the open one last"
        assert closed or interval == "1m"  # the run lasts seconds: its 1s candles closed, its minute may not have

        rows = get(f"{feed.rest}/api/v3/klines?symbol=BTCUSDT&interval={interval}&limit=1000")
        by_open = {row[0]: row for row in rows}
        for t in complete:
            k = final[t]
            assert by_open[t][1:6] == [k["o"], k["h"], k["l"], k["c"], k["v"]] and by_open[t][8] == k["n"]
    recent = get(f"{feed.rest}/api/v3/trades?symbol=BTCUSDT&limit=5")
    assert [t["id"] for t in recent] == [ev.trade_id for ev in trades[-5:]]


@pytest.mark.timeout(120)
def test_ccxt_pro_watches_trades_candles_and_the_ticker(feed: Feed) -> None:
    flow = Flow(feed.venue, seed=5)
    flow.step(200)

    async def scenario() -> tuple[list[Any], list[Any], dict[str, Any]]:
        pro = pro_client(feed)
        try:
            await pro.load_markets()
            running = flow_in_background(flow, 20, 20, 0.1)
            await pro.watch_trades("BTC/USDT")  # each watcher waits for its stream's first message
            await pro.watch_ohlcv("BTC/USDT", "1m")
            await pro.watch_ticker("BTC/USDT")
            await asyncio.to_thread(running.join)
            await asyncio.to_thread(feed.venue.wait_engine, flow.last_in_seq)
            last = trades_of(await asyncio.to_thread(engine_events, feed.venue), "BTCUSDT")[-1]
            # what arrived after a watcher resolved is in ccxt's caches, which its own reader task keeps filling
            async with asyncio.timeout(30):
                while not pro.trades["BTC/USDT"] or int(pro.trades["BTC/USDT"][-1]["id"]) < last.trade_id:
                    await asyncio.sleep(0.05)
                while pro.tickers["BTC/USDT"]["last"] != float(price(last.price)):
                    await asyncio.sleep(0.05)
            trades = list(pro.trades["BTC/USDT"])
            candles = list(pro.ohlcvs["BTC/USDT"]["1m"])
            ticker = pro.tickers["BTC/USDT"]
        finally:
            await pro.close()
        return trades, candles, ticker

    trades, candles, ticker = asyncio.run(scenario())
    engine = {ev.trade_id: ev for ev in trades_of(engine_events(feed.venue), "BTCUSDT")}
    for t in trades:
        ev = engine[int(t["id"])]
        assert (t["price"], t["amount"], t["side"]) == (
            float(price(ev.price)),
            float(qty(ev.qty)),
            "buy" if ev.taker_side is Side.BUY else "sell",
        )
    ids = [int(t["id"]) for t in trades]
    assert ids == sorted(set(ids)) and ids[-1] == max(engine)
    want = recomputed(list(engine.values()), "1m")
    t, o, h, low, c, v = candles[-1]
    w = want[t]
    assert (o, h, low, c) == tuple(float(price(x)) for x in (w.open, w.high, w.low, w.close))
    assert v == pytest.approx(float(qty(w.volume)))
    assert ticker["symbol"] == "BTC/USDT" and ticker["last"] == float(price(engine[max(engine)].price))


def restart_from_the_store(feed: Feed) -> None:
    """Once the MongoDB persister has stored everything, kill the feed and start it again: its memory is empty, so
    everything before its snapshot comes from the store."""
    target = feed.venue.stored_out_seq()
    mongo: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(feed.mongo_url, serverSelectionTimeoutMS=5_000)
    db = mongo.get_default_database()
    wait_for(lambda: (db.consumer_offsets.find_one({"_id": "mongo"}) or {}).get("out_seq", 0) >= target, 60,
             "the MongoDB persister to catch up")  # fmt: skip
    mongo.close()
    feed.service.kill9()
    feed.service.start()


@pytest.mark.timeout(120)
def test_a_restarted_feed_takes_older_candles_and_trades_from_the_mongodb_store(feed: Feed) -> None:
    flow = Flow(feed.venue, seed=21)
    for _ in range(15):  # trades spread over a few seconds: several 1s candles
        flow.step(60)
        time.sleep(0.2)
    feed.venue.wait_engine(flow.last_in_seq)
    restart_from_the_store(feed)
    trades = trades_of(engine_events(feed.venue), "BTCUSDT")
    want = recomputed(trades, "1s")
    rows = get(f"{feed.rest}/api/v3/klines?symbol=BTCUSDT&interval=1s&limit=1000")
    by_open = {row[0]: row for row in rows}
    assert set(want) <= set(by_open)
    for t, w in want.items():
        assert [*by_open[t][1:6], by_open[t][8]] == [price(w.open), price(w.high), price(w.low), price(w.close),
                                                   qty(w.volume), w.trades], t  # fmt: skip
    for t in set(by_open) - set(want):  # between trades: flat at the last close
        assert by_open[t][1] == by_open[t][2] == by_open[t][3] == by_open[t][4] and by_open[t][8] == 0
    minute = get(f"{feed.rest}/api/v3/klines?symbol=BTCUSDT&interval=3m&limit=1")[-1]
    w3 = recomputed(trades, "3m")[minute[0]]
    assert [*minute[1:5], minute[8]] == [price(w3.open), price(w3.high), price(w3.low), price(w3.close), w3.trades]
    recent = get(f"{feed.rest}/api/v3/trades?symbol=BTCUSDT&limit=20")
    assert [(t["id"], t["price"], t["qty"]) for t in recent] == [
        (ev.trade_id, price(ev.price), qty(ev.qty)) for ev in trades[-20:]
    ]
    ticker = get(f"{feed.rest}/api/v3/ticker/24hr?symbol=BTCUSDT")
    assert (ticker["count"], ticker["firstId"], ticker["lastId"]) == (len(trades), trades[0].trade_id,
                                                                      trades[-1].trade_id)  # fmt: skip
    assert ticker["volume"] == qty(sum(ev.qty for ev in trades))


def paged_ohlcv(feed: Feed, since: int, limit: int) -> list[list[float]]:
    """Every 1s candle from ``since`` (ms), paged the way a ccxt user fetches history: from the last candle's
    open + 1 until a page comes back empty."""

    async def pages() -> list[list[float]]:
        pro = pro_client(feed)
        out: list[list[float]] = []
        try:
            at = since
            while page := await pro.fetch_ohlcv("BTC/USDT", "1s", since=at, limit=limit):
                out += page
                at = int(page[-1][0]) + 1
        finally:
            await pro.close()
        return out

    return asyncio.run(pages())


def python_binance_history(feed: Feed, start_ms: int) -> list[list[Any]]:
    """python-binance's ``get_historical_klines``: it first asks for the earliest candle (startTime=0, limit=1) and
    starts no earlier, then pages by 1000."""
    client = Client(ping=False)  # ping=False: the constructor would otherwise ping binance.com
    client.API_URL = feed.rest + "/api"
    try:
        rows: list[list[Any]] = client.get_historical_klines("BTCUSDT", "1s", start_str=start_ms)
        return rows
    finally:
        client.close_connection()
        if not client.loop.is_running():  # the event loop its constructor made for this thread
            client.loop.close()
            asyncio.set_event_loop(None)


@pytest.mark.timeout(120)
def test_klines_from_a_start_before_the_first_trade_begin_at_the_first_candle_from_memory_and_the_store(
    feed: Feed,
) -> None:
    """Binance answers a startTime before a symbol's first trade with its first candles, so a client that pages
    from an early time (ccxt's fetch_ohlcv, python-binance's get_historical_klines) gets the whole history; an
    endTime before the first trade gets none."""
    flow = Flow(feed.venue, seed=29)
    for _ in range(12):
        flow.step(40)
        time.sleep(0.25)
    feed.venue.wait_engine(flow.last_in_seq)
    trades = trades_of(engine_events(feed.venue), "BTCUSDT")
    first = min(recomputed(trades, "1s"))
    early = first - 3_600_000

    def check() -> None:
        rows = get(f"{feed.rest}/api/v3/klines?symbol=BTCUSDT&interval=1s&startTime={early}&limit=3")
        assert [r[0] for r in rows] == [first, first + 1000, first + 2000]
        assert rows[0][8] > 0  # the first candle has trades: nothing flat before it
        at_zero = get(f"{feed.rest}/api/v3/klines?symbol=BTCUSDT&interval=1s&startTime=0&limit=1")
        assert [r[0] for r in at_zero] == [first]
        assert get(f"{feed.rest}/api/v3/klines?symbol=BTCUSDT&interval=1s&startTime={early}&endTime={first - 1}") == []
        # Binance's times in µs select as the same times in ms: from the first candle's open, to the last µs before
        in_us = get(f"{feed.rest}/api/v3/klines?symbol=BTCUSDT&interval=1s&startTime={early * 1000}&limit=3")
        assert [r[0] for r in in_us] == [r[0] for r in rows]
        before = f"startTime={early * 1000}&endTime={first * 1000 - 1}"
        assert get(f"{feed.rest}/api/v3/klines?symbol=BTCUSDT&interval=1s&{before}") == []
        up_to = get(f"{feed.rest}/api/v3/klines?symbol=BTCUSDT&interval=1s&startTime={early}&endTime={first * 1000}")
        assert [r[0] for r in up_to] == [first]
        whole = get(f"{feed.rest}/api/v3/klines?symbol=BTCUSDT&interval=1s&startTime={first}&limit=1000")
        paged = paged_ohlcv(feed, early, 7)
        opens = [int(c[0]) for c in paged]
        # every candle once, in order; the clock may have opened flat ones after ``whole`` was read
        assert opens[: len(whole)] == [r[0] for r in whole] and opens == list(range(first, opens[-1] + 1, 1000))
        history = python_binance_history(feed, early)
        assert [r[0] for r in history[: len(whole)]] == [r[0] for r in whole]
        minute = get(f"{feed.rest}/api/v3/klines?symbol=BTCUSDT&interval=3m&startTime={early}&limit=1")
        assert [r[0] for r in minute] == [first - first % 180_000]

    check()  # from the feed's memory
    restart_from_the_store(feed)
    check()


def window_of(trades: list[TradeExecuted], open_ms: int) -> tuple[int, int, int, str]:
    """(count, first id, last id, volume) of the trades stamped at or after ``open_ms``."""
    inside = [ev for ev in trades if ev.ts >= open_ms * NS_PER_MS]
    return len(inside), inside[0].trade_id, inside[-1].trade_id, qty(sum(ev.qty for ev in inside))


@pytest.mark.timeout(120)
def test_rolling_windows_from_rest_and_the_streams_equal_the_engines_trades(feed: Feed) -> None:
    """GET /api/v3/ticker?windowSize= and <symbol>@ticker_<window> (and !ticker_<window>@arr): each window's
    statistics are those of the engine's trades since its open time; past the day memory holds, the older minutes
    come from the store. Last in this module: it stores a made-up candle three days old, then removes it."""

    def more_trades() -> int:
        flow.step(20)
        feed.venue.wait_engine(flow.last_in_seq)
        return len(trades_of(engine_events(feed.venue), "BTCUSDT"))

    async def streamed() -> dict[str, dict[str, Any]]:
        """The window tickers of the trades made once subscribed (they go out for the symbols that changed)."""
        last: dict[str, dict[str, Any]] = {}
        url = f"{feed.ws}/stream?streams=btcusdt@ticker_1h/!ticker_4h@arr"
        async with connect(url) as ws:
            want = await asyncio.to_thread(more_trades)
            while not ("btcusdt@ticker_1h" in last and "!ticker_4h@arr" in last):
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                data = message["data"]
                for one in data if isinstance(data, list) else [data]:
                    if one["s"] == "BTCUSDT" and one["n"] == want:
                        last[message["stream"]] = one
        return last

    flow = Flow(feed.venue, seed=31)
    flow.step(100)
    feed.venue.wait_engine(flow.last_in_seq)
    trades = trades_of(engine_events(feed.venue), "BTCUSDT")
    base = f"{feed.rest}/api/v3/ticker?symbol=BTCUSDT"
    wait_for(lambda: get(base + "&windowSize=1h")["lastId"] == trades[-1].trade_id, 10, "the feed to see the flow")
    for size in ("1m", "15m", "1h", "23h", "1d", "7d"):
        t = get(f"{base}&windowSize={size}")
        assert (t["count"], t["firstId"], t["lastId"], t["volume"]) == window_of(trades, t["openTime"]), size
        assert t["lastPrice"] == price(trades[-1].price) and "prevClosePrice" not in t and "bidPrice" not in t
    hour = get(base + "&windowSize=1h")
    assert hour["closeTime"] - hour["openTime"] < 3_600_000 + 60_000  # Binance's precision: within a minute
    mini = get(base + "&windowSize=1h&type=MINI")
    assert "priceChange" not in mini and (mini["count"], mini["openTime"]) == (hour["count"], hour["openTime"])
    both = get(f"{feed.rest}/api/v3/ticker?symbols=%5B%22BTCUSDT%22%2C%22ETHUSDT%22%5D&windowSize=2h")
    assert [t["symbol"] for t in both] == ["BTCUSDT", "ETHUSDT"]

    async def through_ccxt() -> dict[str, Any]:
        pro = pro_client(feed)
        try:
            return dict(await pro.fetch_ticker("BTC/USDT", {"rolling": True, "windowSize": "1h"}))
        finally:
            await pro.close()

    ticker = asyncio.run(through_ccxt())  # ccxt reads Binance's rolling shape
    assert (ticker["last"], ticker["baseVolume"]) == (float(hour["lastPrice"]), float(hour["volume"]))

    got = asyncio.run(streamed())
    trades = trades_of(engine_events(feed.venue), "BTCUSDT")
    for name, size in (("btcusdt@ticker_1h", "1h"), ("!ticker_4h@arr", "4h")):
        t = got[name]
        assert (t["e"], t["n"], t["F"], t["L"], t["v"]) == (f"{size}Ticker", *window_of(trades, t["O"])), name
        assert t["c"] == price(trades[-1].price)

    mongo: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(feed.mongo_url, serverSelectionTimeoutMS=5_000)
    klines = mongo.get_default_database().klines
    minute = 60_000 * NS_PER_MS
    old = Kline("BTCUSDT", "1m", trades[0].ts - trades[0].ts % minute - 3 * 1440 * minute, trades[0].price,
                trades[0].price, trades[0].price, trades[0].price, volume=7, trades=5, first_trade_id=0,
                last_trade_id=0)  # fmt: skip
    klines.insert_one(old.doc())
    try:
        week, day = get(base + "&windowSize=7d"), get(base + "&windowSize=1d")
        assert (week["count"], week["volume"]) == (day["count"] + 5, qty(sum(ev.qty for ev in trades) + 7))
        assert get(base + "&windowSize=2d")["count"] == day["count"]  # three days old: outside two
    finally:
        klines.delete_one({"_id": old.doc()["_id"]})
        mongo.close()
