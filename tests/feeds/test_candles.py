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
