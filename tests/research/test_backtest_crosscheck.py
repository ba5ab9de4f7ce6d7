"""research.backtest against backtesting.py 0.6.6 on its own real samples (GOOG daily, EURUSD hourly).

Both run a 10/20 SMA crossover that reverses a fixed position, configured alike: the same commission (10 bps:
backtesting.py charges ``commission`` on entry and again on exit, the venue's taker fee on every fill), no
spread or slippage, market orders on the next bar's open (``trade_on_close=False``), fixed whole-unit sizes (so
margin and all-in sizing play no part), no hedging; once closing the position explicitly, once with
``exclusive_orders=True`` doing it. They must agree on every trade's size, bars, times and prices exactly. What
may differ, and by how much (docs/research.md, "Backtester"):

- PnL, equity and final equity: the same sums added in a different order, so within 1e-12 relative;
- fees: backtesting.py's "Commissions" counts closed trades only; research.backtest counts every fill, so it is
  higher by the entry fee of the trade still open at the end (size x entry price x 10 bps).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest as BtBacktest
from backtesting import Strategy as BtStrategy
from backtesting.lib import crossover
from backtesting.test import EURUSD, GOOG, SMA

from research.backtest import Backtest, Fees, Strategy
from research.strategies import SmaCross, sma

COMMISSION_BPS = 10


class BtSmaCross(BtStrategy):  # type: ignore[misc]
    size = 10
    exclusive = False  # with Backtest(exclusive_orders=True) each new order closes the position itself

    def init(self) -> None:
        self.fast = self.I(SMA, self.data.Close, 10)
        self.slow = self.I(SMA, self.data.Close, 20)

    def next(self) -> None:
        if crossover(self.fast, self.slow):
            if not self.exclusive:
                self.position.close()
            self.buy(size=self.size)
        elif crossover(self.slow, self.fast):
            if not self.exclusive:
                self.position.close()
            self.sell(size=self.size)


# backtesting.py 0.6.6's statistics call pandas APIs the installed pandas deprecates; not our code, not a result
@pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofweek is deprecated")
@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize(("name", "data", "size"), [("GOOG", GOOG, 10), ("EURUSD", EURUSD, 10_000)])
def test_same_trades_and_equity_as_backtesting_py(name: str, data: pd.DataFrame, size: int, exclusive: bool) -> None:
    bt = BtBacktest(data, BtSmaCross, cash=100_000, commission=COMMISSION_BPS / 10_000, spread=0.0, margin=1.0,
                    trade_on_close=False, hedging=False, exclusive_orders=exclusive, finalize_trades=False)  # fmt: skip
    with pytest.warns(UserWarning, match="trades remain open"):  # both leave the last position open
        stats = bt.run(size=size, exclusive=exclusive)
    ours = Backtest(data, SmaCross, cash=100_000, fees=Fees(COMMISSION_BPS, COMMISSION_BPS)).run(size=size)

    theirs = stats["_trades"]
    mine = ours.trades_frame()
    assert len(mine) == len(theirs) > 50
    assert mine["size"].tolist() == theirs["Size"].tolist()
    assert mine["entry_bar"].tolist() == theirs["EntryBar"].tolist()
    assert mine["exit_bar"].tolist() == theirs["ExitBar"].tolist()
    assert mine["entry_time"].tolist() == theirs["EntryTime"].tolist()
    assert mine["exit_time"].tolist() == theirs["ExitTime"].tolist()
    assert mine["entry_price"].tolist() == theirs["EntryPrice"].tolist()
    assert mine["exit_price"].tolist() == theirs["ExitPrice"].tolist()
    np.testing.assert_allclose(mine["pnl"], theirs["PnL"], rtol=0, atol=1e-12 * 100_000)

    assert ours.metrics["final_equity"] == pytest.approx(stats["Equity Final [$]"], rel=1e-12)
    np.testing.assert_allclose(ours.equity.to_numpy(), stats["_equity_curve"]["Equity"].to_numpy(), rtol=1e-12)
    assert ours.metrics["max_drawdown"] == pytest.approx(stats["Max. Drawdown [%]"] / 100, rel=1e-12)

    last = ours.fills[-1]  # opened the position still held at the end (a reversal: half of it opened it)
    open_entry_fee = size * last.price * COMMISSION_BPS / 10_000
    assert abs(ours.position.iloc[-1]) == size
    assert ours.metrics["fees_paid"] == pytest.approx(stats["Commissions [$]"] + open_entry_fee, rel=1e-12)


FULL_EQUITY = 1 - sys.float_info.epsilon  # backtesting.py's default size for buy() and sell(): "all in"


class BtAllIn(BtStrategy):  # type: ignore[misc]
    def init(self) -> None:
        self.fast = self.I(SMA, self.data.Close, 10)
        self.slow = self.I(SMA, self.data.Close, 20)

    def next(self) -> None:
        if crossover(self.fast, self.slow):
            self.buy()
        elif crossover(self.slow, self.fast):
            self.sell()


class AllIn(Strategy):
    def init(self) -> None:
        self.fast = self.I(sma, self.data.close, 10)
        self.slow = self.I(sma, self.data.close, 20)

    def next(self) -> None:
        if len(self.data.close) < 2:
            return
        f0, f1, s0, s1 = self.fast[-2], self.fast[-1], self.slow[-2], self.slow[-1]
        if f0 < s0 and f1 > s1:
            self.close()
            self.buy(fraction=FULL_EQUITY)
        elif f0 > s0 and f1 < s1:
            self.close()
            self.sell(fraction=FULL_EQUITY)


@pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofweek is deprecated")
@pytest.mark.parametrize(("name", "data"), [("GOOG", GOOG), ("EURUSD", EURUSD)])
def test_all_in_sizing_as_backtesting_py(name: str, data: pd.DataFrame) -> None:
    """backtesting.py's all-in orders with exclusive_orders=True (close, then reverse with the whole equity) against
    fraction orders after close(): the position is flat when each is sized, so the sizes agree to the lot."""
    bt = BtBacktest(data, BtAllIn, cash=10_000, commission=COMMISSION_BPS / 10_000, trade_on_close=False,
                    exclusive_orders=True, finalize_trades=False)  # fmt: skip
    with pytest.warns(UserWarning, match="trades remain open"):
        stats = bt.run()
    ours = Backtest(data, AllIn, cash=10_000, fees=Fees(COMMISSION_BPS, COMMISSION_BPS)).run()
    theirs, mine = stats["_trades"], ours.trades_frame()
    assert len(mine) == len(theirs) > 50
    assert len(set(mine["size"].abs())) > 10  # the sizes do follow the equity
    for ours_col, theirs_col in [("size", "Size"), ("entry_bar", "EntryBar"), ("exit_bar", "ExitBar"),
                                 ("entry_price", "EntryPrice"), ("exit_price", "ExitPrice")]:  # fmt: skip
        assert mine[ours_col].tolist() == theirs[theirs_col].tolist(), ours_col
    assert ours.metrics["final_equity"] == pytest.approx(stats["Equity Final [$]"], rel=1e-12)
