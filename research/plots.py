"""``python -m research.plots``: the figures of docs/research.md, from backtesting.py's real samples.

- ``sma-goog.png``: equity and drawdown of the SMA(10/20) crossover on GOOG daily bars, 10 shares a trade, with
  the venue's taker fee (10 bps) on every fill;
- ``forest-goog.png``: equity and drawdown of trading the random forest's out-of-sample signal (walk-forward,
  research.model) on the same bars after the same fees, beside which the report's table puts buy-and-hold.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from backtesting.test import GOOG

from research.backtest import Backtest, Fees
from research.model import Params, out_of_sample, signal_backtest
from research.strategies import SmaCross

OUT = Path(__file__).resolve().parent.parent / "docs" / "research"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m research.plots")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    fees = Fees(10, 10)
    bars: pd.DataFrame = GOOG
    sma = Backtest(bars, SmaCross, cash=10_000, fees=fees).run(size=10)
    sma.plot(args.out / "sma-goog.png", "SMA(10/20) crossover on GOOG, 10 bps a fill")
    forest = signal_backtest(bars, out_of_sample(bars, Params(seed=args.seed), "rf"), fees, size=10)
    forest.plot(args.out / "forest-goog.png", "random forest's out-of-sample signal on GOOG, 10 bps a fill")
    for name, result in (("SMA crossover", sma), ("random forest", forest)):
        m = result.metrics
        print(f"{name}: return {m['total_return']:+.1%}, max drawdown {m['max_drawdown']:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
