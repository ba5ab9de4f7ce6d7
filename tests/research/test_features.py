"""Features use only data known at decision time: altering or removing every bar after ``t`` leaves the rows up to
``t`` unchanged (property-style, over random cut points and random alterations), on real and venue-shaped bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from backtesting.test import GOOG

from persistence.klines import INTERVALS, KlineModel
from research.features import WARMUP, build_features, target, tick_order_flow
from tests.research.market import SPECS, fold, walk


def venue_bars() -> pd.DataFrame:
    _, klines = fold(KlineModel(SPECS), walk("BTCUSDT", 3_000, seed=3, step_ns=400_000_000))
    frame = pd.DataFrame([k for k in klines if k["interval"] == "1s"]).set_index("open_time")
    return frame[["open", "high", "low", "close", "volume", "trades", "taker_buy_volume"]]


def altered(bars: pd.DataFrame, t: int, rng: np.random.Generator) -> pd.DataFrame:
    later = bars.iloc[t + 1 :].copy()
    scale = rng.uniform(0.5, 2.0, size=(len(later), 1))
    later[:] = np.maximum(1, np.round(later.to_numpy(dtype=float) * scale))
    return pd.concat([bars.iloc[: t + 1], later])


@pytest.mark.parametrize("name", ["GOOG", "venue"])
def test_no_look_ahead(name: str) -> None:
    bars = GOOG if name == "GOOG" else venue_bars()
    full = build_features(bars)
    assert len(full.columns) >= 10 if name == "venue" else len(full.columns) >= 8
    assert full.iloc[WARMUP:].notna().all().all()
    rng = np.random.default_rng(11)
    for t in rng.integers(0, len(bars) - 2, size=25):
        head = full.iloc[: t + 1]
        cut = build_features(bars.iloc[: t + 1])
        changed = build_features(altered(bars, int(t), rng)).iloc[: t + 1]
        pd.testing.assert_frame_equal(cut, head)
        pd.testing.assert_frame_equal(changed, head)


def test_target_is_next_direction() -> None:
    y = target(GOOG)
    assert y.iloc[:-1].tolist() == (GOOG["Close"].shift(-1) > GOOG["Close"]).iloc[:-1].astype(float).tolist()
    assert np.isnan(y.iloc[-1])


def test_tick_order_flow_matches_klines() -> None:
    trades = walk("BTCUSDT", 500, seed=4)
    ticks, klines = fold(KlineModel(SPECS), trades)
    width = dict(INTERVALS)["1s"]
    flow = tick_order_flow(pd.DataFrame(ticks), width)
    for k in (k for k in klines if k["interval"] == "1s"):
        assert flow.loc[k["open_time"], "buy_volume"] == k["taker_buy_volume"]
        assert flow.loc[k["open_time"], "buy_trades"] + flow.loc[k["open_time"], "sell_trades"] == k["trades"]
