"""The feed's live candles equal those recomputed from the trades, whatever the timing: closed by later trades or by
the clock, silent intervals flat at the last close, and a trade that arrives after the clock closed its candle
added to it all the same."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.candles import SymbolCandles
from persistence.klines import BINANCE_INTERVALS, SECOND, Kline

QPTL = 1_000


def recomputed(trades: list[tuple[int, int, int, bool, int]], interval: str, width: int) -> dict[int, Kline]:
    out: dict[int, Kline] = {}
    for ts, price, qty, buys, trade_id in trades:
        start = ts - ts % width
        k = out.setdefault(start, Kline.empty("X", interval, start))
        k.add(price, qty, price * qty * QPTL, buys, trade_id)
    return out


steps = st.lists(
    st.tuples(
        st.integers(0, 3 * SECOND),  # time to the next trade
        st.integers(90, 110),  # price
        st.integers(1, 5),  # qty
        st.booleans(),  # the taker buys
        st.integers(-2 * SECOND, 2 * SECOND),  # where the clock is when the trade arrives, relative to its stamp
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_candles_equal_the_recomputed_ones_with_flat_fills(trades_and_clock: list[tuple[int, int, int, bool, int]],
                                                            ) -> None:  # fmt: skip
    candles = SymbolCandles("X", QPTL, last_price=100)
    ts = 1_700_000_000 * SECOND
    trades: list[tuple[int, int, int, bool, int]] = []
    for trade_id, (gap, price, qty, buys, clock) in enumerate(trades_and_clock, start=1):
        ts += gap
        candles.advance(ts + clock, [])  # the clock may run ahead of a trade still in the pipeline (a late trade)
        candles.trade(ts, price, qty, buys, trade_id, [])
        trades.append((ts, price, qty, buys, trade_id))
    for interval, width in BINANCE_INTERVALS:
        if interval in ("4h", "1d"):
            continue  # the same code; the runs here last minutes
        want = recomputed(trades, interval, width)
        held = {k.open_time: k for k in candles.history(interval)}
        for start, w in want.items():
            k = held[start]
            assert k.doc() == w.doc(), (interval, start)
        times = sorted(held)
        assert times == list(range(times[0], times[-1] + width, width)), "contiguous candles"
        close = 100
        for t in times:
            k = held[t]
            if not k.trades:
                assert (k.open, k.high, k.low, k.close, k.volume) == (close, close, close, close, 0), (interval, t)
            close = k.close


def test_the_rolling_window_covers_the_last_1440_minutes() -> None:
    candles = SymbolCandles("X", QPTL, last_price=100)
    minute = 60 * SECOND
    start = 1_700_000_000 * SECOND // minute * minute
    candles.trade(start, 50, 1, True, 1, [])  # falls out of the window 1440 minutes later
    candles.trade(start + 10 * minute, 70, 2, False, 2, [])
    candles.trade(start + 1440 * minute, 60, 3, True, 3, [])
    w = candles.window()
    assert (w.kline.open, w.kline.high, w.kline.low, w.kline.close) == (70, 70, 60, 60)
    k = w.kline
    assert (k.volume, k.trades, k.first_trade_id, k.last_trade_id, w.prev_close) == (5, 2, 2, 3, 50)


MINUTE = 60 * SECOND


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3 * 1440), st.integers(90, 110), st.integers(1, 5)), min_size=1, max_size=40),
    st.sampled_from([1, 5, 59, 60, 240, 1439, 1440]),
)
def test_every_rolling_window_is_the_trades_of_its_last_minutes(trades: list[tuple[int, int, int]],
                                                                 minutes: int) -> None:  # fmt: skip
    """Any window size up to the day memory holds: exactly the trades of the last ``minutes`` 1m candles (the open
    one included), and the last price before them (trades spread over three days, minutes apart)."""
    start = 1_700_000_000 * SECOND // MINUTE * MINUTE
    candles = SymbolCandles("X", QPTL, last_price=100)
    stamped = sorted((start + at * MINUTE + n, price, qty) for n, (at, price, qty) in enumerate(trades))
    for trade_id, (ts, price, qty) in enumerate(stamped, 1):
        candles.trade(ts, price, qty, True, trade_id, [])
    now = stamped[-1][0]
    opened = now - now % MINUTE - (minutes - 1) * MINUTE
    inside = [(i, p, q) for i, (ts, p, q) in enumerate(stamped, 1) if ts >= opened]
    before = [p for ts, p, _ in stamped if ts < opened]
    w = candles.window(minutes)
    k = w.kline
    assert (k.open_time, k.trades, k.volume) == (opened, len(inside), sum(q for *_, q in inside))
    assert (k.open, k.close, k.high, k.low) == (inside[0][1], inside[-1][1], max(p for _, p, _ in inside),
                                                min(p for _, p, _ in inside))  # fmt: skip
    assert (k.first_trade_id, k.last_trade_id) == (inside[0][0], inside[-1][0])
    assert w.prev_close == (before[-1] if before else 100)  # 100: the price the candles started from


def test_a_window_longer_than_memory_takes_the_older_minutes_given() -> None:
    """Past the day memory holds, the stored candles of the older minutes are merged first; those opened before the
    window are left out."""
    start = 1_700_000_000 * SECOND // MINUTE * MINUTE
    candles = SymbolCandles("X", QPTL, last_price=100)
    candles.trade(start + 3 * 1440 * MINUTE, 80, 2, True, 10, [])
    now_minute = start + 3 * 1440 * MINUTE
    older = [Kline("X", "1m", now_minute - 2 * 1440 * MINUTE, 70, 75, 65, 72, volume=4, trades=3, first_trade_id=5,
                   last_trade_id=7),
             Kline("X", "1m", now_minute - 8 * 1440 * MINUTE, 1, 1, 1, 1, volume=9, trades=1, first_trade_id=1,
                   last_trade_id=1)]  # fmt: skip
    older.sort(key=lambda k: k.open_time)
    k = candles.window(7 * 1440, older).kline
    assert (k.open, k.high, k.low, k.close, k.volume, k.trades, k.first_trade_id, k.last_trade_id) == (
        70, 80, 65, 80, 6, 4, 5, 10)  # fmt: skip
    assert candles.window(1440, older).kline.trades == 1  # a day: memory's own minutes only


def test_the_24_hour_ticker_knows_the_price_before_memory_from_the_seed() -> None:
    start = 1_700_000_000 * SECOND // MINUTE * MINUTE
    candles = SymbolCandles("X", QPTL, last_price=90)
    opened = Kline("X", "1m", start, 95, 95, 95, 95, volume=1, trades=1, first_trade_id=8, last_trade_id=8)
    candles.seed([opened], [], before=93)
    assert candles.window().prev_close == 93
