"""Equity and drawdown of a backtest as one PNG (matplotlib's Agg canvas: no display, no global pyplot state)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from research.backtest_metrics import drawdown


def plot_equity(equity: pd.Series, path: Path | str, title: str = "") -> None:
    fig = Figure(figsize=(10, 6))
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot(equity.index, equity.to_numpy(), lw=1.0)
    top.set_ylabel("equity")
    top.set_title(title or "equity")
    top.grid(alpha=0.3)
    dd = drawdown(equity)
    bottom.fill_between(dd.index, dd.to_numpy() * 100, 0.0, color="tab:red", alpha=0.5)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
