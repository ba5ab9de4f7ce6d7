"""research.backtest on bars small enough to work out by hand: fills, fees, equity, drawdown, metrics, limits.

The four bars below open at 100, 110, 120, 90 and close at 105, 115, 100, 95 (one minute apart). A strategy that
buys 2 on bar 0 and closes on bar 2 fills at the opens of bars 1 and 3, paying 10 bps of each notional:
    buy  2 @ 110: notional 220, fee 0.22 -> cash 1000 - 220 - 0.22 = 779.78
    sell 2 @  90: notional 180, fee 0.18 -> cash 779.78 + 180 - 0.18 = 959.60
Equity at the closes: 1000, 779.78 + 230 = 1009.78, 779.78 + 200 = 979.78, 959.60.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.backtest import Backtest, Fees, Slippage, Strategy, backtest_signal
from research.backtest_metrics import compute_metrics, longest_drawdown
from research.strategies import HoldSignal
from wire.venue import load_venue

FEES = Fees(maker_bps=10, taker_bps=10)


def bars(opens: list[float], closes: list[float], spread: float = 5.0) -> pd.DataFrame:
    index = pd.date_range("2026-01-01", periods=len(opens), freq="1min")
    o, c = np.array(opens, dtype=float), np.array(closes, dtype=float)
    return pd.DataFrame(
        {"open": o, "high": np.maximum(o, c) + spread, "low": np.minimum(o, c) - spread, "close": c, "volume": 1.0},
        index=index,
    )


FOUR = bars([100, 110, 120, 90], [105, 115, 100, 95])


class BuyThenClose(Strategy):
    def next(self) -> None:
        i = len(self.data.close) - 1
        if i == 0:
            self.buy(2)
        elif i == 2:
            self.close()


def test_fills_fees_and_equity_by_hand() -> None:
    r = Backtest(FOUR, BuyThenClose, cash=1000.0, fees=FEES).run()
    assert [(f.bar, f.qty, f.price) for f in r.fills] == [(1, 2, 110.0), (3, -2, 90.0)]
    assert [f.fee for f in r.fills] == pytest.approx([0.22, 0.18], abs=1e-12)
    assert r.equity.to_numpy() == pytest.approx([1000.0, 1009.78, 979.78, 959.60], abs=1e-9)
    assert r.position.tolist() == [0, 2, 2, 0]
    m = r.metrics
    assert m["fees_paid"] == pytest.approx(0.40, abs=1e-12)
    assert m["final_equity"] == pytest.approx(959.60, abs=1e-9)
    assert m["total_return"] == pytest.approx(-0.0404, abs=1e-12)
    assert m["max_drawdown"] == pytest.approx(959.60 / 1009.78 - 1, abs=1e-12)
    assert m["max_drawdown_duration_bars"] == 2  # from the peak at bar 1 to the end, never recovered
    assert m["max_drawdown_duration_days"] == pytest.approx(2 / 1440)
    assert m["turnover"] == pytest.approx(400 / np.mean([1000.0, 1009.78, 979.78, 959.60]))
    (t,) = r.trades
    assert (t.entry_bar, t.exit_bar, t.size, t.entry_price, t.exit_price) == (1, 3, 2, 110.0, 90.0)
    assert t.fees == pytest.approx(0.40) and t.pnl == pytest.approx(2 * (90 - 110) - 0.40)
    assert m["win_rate"] == 0.0


def test_no_fill_at_the_signal_bars_close() -> None:
    """The order sent on bar 0 (close 105) fills at bar 1's open (110), never at 105 or any price of bar 0."""
    r = Backtest(FOUR, BuyThenClose, cash=1000.0, fees=Fees()).run()
    assert r.fills[0].bar == 1 and r.fills[0].price == 110.0
    assert r.equity.iloc[0] == 1000.0  # nothing held through bar 0


def test_orders_on_the_last_bar_never_fill() -> None:
    class BuyLast(Strategy):
        def next(self) -> None:
            if len(self.data.close) == 4:
                self.buy(1)

    r = Backtest(FOUR, BuyLast, cash=1000.0, fees=FEES).run()
    assert r.fills == [] and r.equity.tolist() == [1000.0] * 4


def test_next_cannot_read_a_later_bar() -> None:
    seen: list[tuple[int, float]] = []

    class Peek(Strategy):
        def next(self) -> None:
            i = len(self.data.close) - 1
            seen.append((len(self.data.close.values), self.data.close[-1]))
            assert self.data.close[i] == self.data.close[-1]
            with pytest.raises(IndexError):
                self.data.close[i + 1]
            with pytest.raises(IndexError):
                self.data.open[-(i + 2)]

    Backtest(FOUR, Peek, cash=1000.0, fees=FEES).run()
    assert seen == [(1, 105.0), (2, 115.0), (3, 100.0), (4, 95.0)]


def test_position_limit_cuts_orders() -> None:
    class Greedy(Strategy):
        def next(self) -> None:
            self.buy(5)

    r = Backtest(FOUR, Greedy, cash=1000.0, fees=FEES, max_position=3).run()
    assert r.position.tolist() == [0, 3, 3, 3]
    assert [(f.bar, f.qty) for f in r.fills] == [(1, 3)]
    # bar 0 wants 5 (cut to 3), bars 1 and 2 want 8 (cut, no fill); bar 3's order never reaches a fill
    assert r.metrics["orders_clipped"] == 3

    class Short(Strategy):
        def next(self) -> None:
            if len(self.data.close) == 1:
                self.sell(7)

    r = Backtest(FOUR, Short, cash=1000.0, fees=FEES, max_position=4).run()
    assert r.position.tolist() == [0, -4, -4, -4]


def test_reversal_is_one_fill_and_two_trades() -> None:
    class Flip(Strategy):
        def next(self) -> None:
            i = len(self.data.close) - 1
            if i == 0:
                self.buy(1)
            elif i == 1:
                self.close()
                self.sell(1)

    r = Backtest(FOUR, Flip, cash=1000.0, fees=FEES).run()
    assert [(f.bar, f.qty, f.price) for f in r.fills] == [(1, 1, 110.0), (2, -2, 120.0)]
    (t,) = r.trades  # the short opened at bar 2 is still open at the end: no round trip yet
    assert (t.size, t.entry_price, t.exit_price) == (1, 110.0, 120.0)
    assert t.fees == pytest.approx(0.110 + 0.120)  # its entry fee and half of the two-lot fill's fee
    assert r.equity.iloc[-1] == pytest.approx(1000 - 110 - 0.11 + 240 - 0.24 - 95)


def test_slippage_against_the_trader_and_inside_the_bar() -> None:
    # bar 0's range is 110 - 95 = 15; bar 1's is 105 .. 120
    slip = Slippage(bps=10, range_fraction=0.2)
    r = Backtest(FOUR, BuyThenClose, cash=1000.0, fees=Fees(), slippage=slip).run()
    buy, sell = r.fills
    assert buy.price == pytest.approx(110 + 0.11 + 0.2 * 15)
    # the sell is decided on bar 2 (range 95 .. 125: 30): 90 - 0.09 - 6 = 83.91, below bar 3's low 85
    assert sell.price == 85.0
    ticked = Backtest(FOUR, BuyThenClose, cash=1000.0, fees=Fees(), slippage=slip, tick=0.5).run()
    assert [f.price for f in ticked.fills] == [113.5, 85.0]


def test_sharpe_sortino_from_a_known_return_series() -> None:
    """Returns 0, +10 %, -10 %, +10 % on 100 of cash: mean 0.025, sample variance 0.0275 / 3, downside deviation
    sqrt(0.01 / 4) = 0.05."""
    equity = pd.Series([100.0, 110.0, 99.0, 108.9])
    m = compute_metrics(equity, [], [], 1.0, 100.0, periods_per_year=252)
    assert m["sharpe"] == pytest.approx(0.025 / math.sqrt(0.0275 / 3) * math.sqrt(252))
    assert m["sortino"] == pytest.approx(0.025 / 0.05 * math.sqrt(252))
    assert m["volatility"] == pytest.approx(math.sqrt(0.0275 / 3) * math.sqrt(252))
    assert m["max_drawdown"] == pytest.approx(-0.1)
    assert m["max_drawdown_duration_bars"] == 2
    assert m["total_return"] == pytest.approx(0.089)
    assert m["annualized_return"] == pytest.approx(1.089 ** (252 / 4) - 1)


def test_drawdown_duration_takes_the_longest_recovery() -> None:
    # 100 -> 90 -> 100: 2 bars; 100 -> 95, 96, 97 -> 101: 4 bars
    assert longest_drawdown(np.array([100.0, 90, 100, 95, 96, 97, 101])) == (2, 6)
    assert longest_drawdown(np.array([1.0, 2, 3])) == (0, 0)
    assert longest_drawdown(np.array([5.0, 4, 3, 6, 5.5])) == (0, 3)


def test_signal_backtest_matches_the_loop() -> None:
    rng = np.random.default_rng(7)
    n = 2_000
    close = 1_000 + np.cumsum(rng.normal(0, 2, n))
    opens = np.concatenate(([1_000.0], close[:-1])) + rng.normal(0, 0.5, n)
    data = bars(list(opens), list(close), spread=1.5)
    signal = rng.choice([-1.0, 0.0, 1.0, np.nan], size=n, p=[0.3, 0.2, 0.45, 0.05])
    kw = {"cash": 50_000.0, "fees": FEES, "slippage": Slippage(bps=2, range_fraction=0.1), "max_position": 2}
    loop = Backtest(data, HoldSignal, **kw).run(signal=signal, size=3)  # type: ignore[arg-type]
    fast = backtest_signal(data, pd.Series(signal, index=data.index), size=3, **kw)  # type: ignore[arg-type]
    assert fast.fills == loop.fills
    assert len(loop.fills) > 100
    assert fast.equity.equals(loop.equity)
    assert fast.trades == loop.trades
    assert fast.metrics == pytest.approx(loop.metrics, nan_ok=True)
    assert fast.metrics["orders_clipped"] > 0


def test_fees_come_from_the_venue_file() -> None:
    spec = load_venue().spec("ETHUSDT")
    assert Fees.from_venue("ETHUSDT") == Fees(spec.maker_fee_bps, spec.taker_fee_bps)


def test_plot_writes_a_png(tmp_path: Path) -> None:
    r = Backtest(FOUR, BuyThenClose, cash=1000.0, fees=FEES).run()
    out = tmp_path / "eq.png"
    r.plot(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_drawdown_duration_equals_a_plain_loop() -> None:
    """The vectorized longest_drawdown against the definition walked bar by bar, on random curves with ties."""

    def walk(e: np.ndarray) -> tuple[int, int]:
        peak, best, start = np.maximum.accumulate(e), (0, 0), -1
        for i in range(len(e)):
            under = bool(e[i] < peak[i])
            if under and start < 0:
                start = i - 1
            if start >= 0 and i - start > best[1] - best[0]:
                best = (start, i)
            if not under:
                start = -1
        return best

    rng = np.random.default_rng(3)
    for _ in range(2_000):
        e = np.round(100 + np.cumsum(rng.normal(0, 1, rng.integers(1, 40))))
        assert longest_drawdown(e) == walk(e)


def test_ruin_closes_the_position_and_stops_trading() -> None:
    """Short 1 from 100 with 50 of cash (fee 0.10): equity 149.90 - 140 = 9.90, then 149.90 - 160 = -10.10 at bar
    2's close: ruined there; the close sent on bar 2 (it would fill at 150 on bar 3) never fills."""

    class ShortThenClose(Strategy):
        def next(self) -> None:
            i = len(self.data.close) - 1
            if i == 0:
                self.sell(1)
            elif i == 2:
                self.close()

    data = bars([100, 100, 150, 150], [100, 140, 160, 90])
    r = Backtest(data, ShortThenClose, cash=50.0, fees=FEES).run()
    assert r.equity.to_numpy() == pytest.approx([50.0, 9.90, -10.10, -10.10], abs=1e-9)
    assert r.position.tolist() == [0, -1, -1, 0]
    assert [(f.bar, f.qty) for f in r.fills] == [(1, -1)]
    assert r.metrics["ruined_at_bar"] == 2
    assert r.metrics["max_drawdown"] == pytest.approx(-10.10 / 50 - 1)
    fast = backtest_signal(data, [-1, -1, 0, 0], FEES, cash=50.0)
    assert fast.equity.equals(r.equity) and fast.fills == r.fills


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_order_sizes_are_positive_whole_lots(size: object) -> None:
    class Bad(Strategy):
        def next(self) -> None:
            self.buy(size)  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="whole number of lots"):
        Backtest(FOUR, Bad, cash=1000.0, fees=FEES).run()


def test_limit_orders_rest_as_makers_or_take_at_the_open() -> None:
    """Bar 1 opens at 110 and trades 105 .. 120. With 5 bps maker and 20 bps taker fees, orders sent on bar 0:
    buy 2 limit 108 rests, is reached (low 105) and fills at 108 as a maker: fee 2 x 108 x 5 bps = 0.108;
    buy 1 limit 112 is marketable at the open: fills at 110 as a taker: fee 110 x 20 bps = 0.22;
    sell 1 limit 125 is never reached (high 120) and expires, though bar 2 (high 125) would reach it."""
    fees = Fees(maker_bps=5, taker_bps=20)

    class Limits(Strategy):
        def next(self) -> None:
            if len(self.data.close) == 1:
                self.buy(2, limit=108.0)
                self.buy(1, limit=112.0)
                self.sell(1, limit=125.0)

    r = Backtest(FOUR, Limits, cash=1000.0, fees=fees).run()
    assert [(f.bar, f.qty, f.price, f.maker) for f in r.fills] == [(1, 2, 108.0, True), (1, 1, 110.0, False)]
    assert [f.fee for f in r.fills] == pytest.approx([0.108, 0.22], abs=1e-12)
    assert r.position.tolist() == [0, 3, 3, 3]
    assert r.equity.iloc[-1] == pytest.approx(1000 - 216 - 0.108 - 110 - 0.22 + 3 * 95)


def test_limit_orders_respect_the_position_limit_and_close_cancels_them() -> None:
    class Limits(Strategy):
        def next(self) -> None:
            i = len(self.data.close) - 1
            if i == 0:
                self.buy(5, limit=200.0)  # marketable at 110, cut to 3
            elif i == 1:
                self.sell(1, limit=1.0)
                self.close()  # cancels the sell: the position goes flat at bar 2's open, once

    r = Backtest(FOUR, Limits, cash=1000.0, fees=FEES, max_position=3).run()
    assert [(f.bar, f.qty, f.price) for f in r.fills] == [(1, 3, 110.0), (2, -3, 120.0)]
    assert r.metrics["orders_clipped"] == 1


def test_fraction_orders_are_sized_at_the_fill_price() -> None:
    """Half of 1000 at bar 1's open of 110 plus 10 bps: 500 // 110.11 = 4 lots (fee 0.44)."""

    class Half(Strategy):
        def next(self) -> None:
            if len(self.data.close) == 1:
                self.buy(fraction=0.5)

    r = Backtest(FOUR, Half, cash=1000.0, fees=FEES).run()
    assert [(f.bar, f.qty, f.price) for f in r.fills] == [(1, 4, 110.0)]
    assert r.fills[0].fee == pytest.approx(0.44)

    class Bad(Strategy):
        def next(self) -> None:
            self.sell(1, fraction=0.5)

    with pytest.raises(ValueError, match="no size"):
        Backtest(FOUR, Bad, cash=1000.0, fees=FEES).run()
