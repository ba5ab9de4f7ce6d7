"""Example strategies for research.backtest."""

from __future__ import annotations

import numpy as np
import pandas as pd

from research.backtest import Strategy


def sma(values: np.ndarray, n: int) -> np.ndarray:
    out: np.ndarray = pd.Series(values).rolling(n).mean().to_numpy()
    return out


class SmaCross(Strategy):
    """Long ``size`` lots when the fast SMA crosses above the slow one, short when it crosses below."""

    fast = 10
    slow = 20
    size = 10

    def init(self) -> None:
        self.fast_sma = self.I(sma, self.data.close, self.fast)
        self.slow_sma = self.I(sma, self.data.close, self.slow)

    def next(self) -> None:
        if len(self.data.close) < 2:
            return
        f0, f1, s0, s1 = self.fast_sma[-2], self.fast_sma[-1], self.slow_sma[-2], self.slow_sma[-1]
        if f0 < s0 and f1 > s1:  # NaN (warm-up) compares false: no cross
            self.close()
            self.buy(self.size)
        elif f0 > s0 and f1 < s1:
            self.close()
            self.sell(self.size)


class HoldSignal(Strategy):
    """Hold ``signal[i] * size`` lots from the open after bar ``i``: the loop twin of backtest_signal."""

    signal: np.ndarray = np.zeros(0)
    size = 1

    def next(self) -> None:
        i = len(self.data.close) - 1
        value = self.signal[i]
        want = 0 if np.isnan(value) else int(value) * self.size
        if want != self.position:
            self.close()
            if want:
                self.buy(want) if want > 0 else self.sell(-want)
