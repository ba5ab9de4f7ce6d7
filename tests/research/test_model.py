"""The direction model: purged walk-forward splits, determinism for a seed, artifacts that load and predict, and a
training run on the ETL's dataset layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from backtesting.test import GOOG

from persistence.klines import KlineModel
from research.backtest import Fees
from research.model import BASELINES, MODELS, Params, dataset, load_model, main, train, walk_forward
from tests.research.market import SPECS, fold, walk

FAST = Params(seed=7, folds=3, trees=30)


def test_walk_forward_is_time_ordered_and_purged() -> None:
    splits = walk_forward(1_000, 5, 3)
    assert len(splits) == 5
    tests = np.concatenate([t for _, t in splits])
    assert (np.diff(tests) == 1).all()  # contiguous blocks, each row tested once
    for train_rows, test_rows in splits:
        assert train_rows[0] == 0 and train_rows[-1] == test_rows[0] - 4


def test_same_seed_same_metrics_and_artifacts(tmp_path: Path) -> None:
    fees = Fees(maker_bps=10, taker_bps=10)
    v1, m1 = train(GOOG, tmp_path / "a", FAST, fees, model="rf", size=10)
    v2, m2 = train(GOOG, tmp_path / "b", FAST, fees, model="rf", size=10)
    assert v1 == v2 and m1["evaluation"] == m2["evaluation"]
    other = train(GOOG, tmp_path / "c", Params(seed=8, folds=3, trees=30), fees, model="rf", size=10)[1]
    assert other["evaluation"]["models"]["rf"] != m1["evaluation"]["models"]["rf"]
    models = m1["evaluation"]["models"]
    assert set(models) == set(BASELINES + MODELS)
    for m in models.values():
        assert 0 <= m["accuracy"] <= 1 and 0 <= m["roc_auc"] <= 1 and m["log_loss"] > 0
        assert "total_return" in m["backtest"]
    model, meta = load_model(tmp_path / "a" / v1)
    assert (tmp_path / "a" / "LATEST").read_text().strip() == v1
    x, _ = dataset(GOOG)
    assert meta["features"] == list(x.columns)
    prob = model.predict_proba(x.tail(5).to_numpy())[:, 1]
    assert ((prob > 0) & (prob < 1)).all()


def test_train_on_etl_layout(tmp_path: Path) -> None:
    _, klines = fold(KlineModel(SPECS), walk("BTCUSDT", 2_000, seed=5, step_ns=300_000_000))
    frame = pd.DataFrame([k for k in klines if k["interval"] == "1s"])
    part = tmp_path / "datasets" / "klines" / "BTCUSDT" / "1s" / "part-000001.parquet"
    part.parent.mkdir(parents=True)
    frame.to_parquet(part, index=False)
    out = tmp_path / "models"
    args = ["train", "--data", str(tmp_path / "datasets"), "--interval", "1s", "--out", str(out), "--trees", "20"]
    assert main([*args, "--folds", "3"]) == 0
    version = (out / "LATEST").read_text().strip()
    meta = json.loads((out / version / "metadata.json").read_text())
    assert meta["symbol"] == "BTCUSDT" and meta["fees"] == {"maker_bps": 10, "taker_bps": 10}
    assert "ofi" in meta["features"] and meta["bars"] == len(frame)
