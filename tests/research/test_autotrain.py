"""The inference service's own training round (research/autotrain.py) on known klines in a real FerretDB: nothing
with too little history, a model once there is enough, and the next round trains on what was added since."""

from __future__ import annotations

import json
from pathlib import Path

from persistence.klines import KlineModel
from research.autotrain import MIN_BARS, train_once
from tests.research.market import SPECS, client, fold, insert, walk


def test_a_round_waits_for_history_then_trains_a_model_the_service_loads(mongo_url: str, tmp_path: Path) -> None:
    datasets, models = tmp_path / "datasets", tmp_path / "models"
    model = KlineModel(SPECS)
    c = client(mongo_url)
    db = c.get_default_database()
    try:
        few = walk("BTCUSDT", 50, seed=3, step_ns=1_000_000_000)
        insert(db, *fold(model, few))
        assert train_once(mongo_url, datasets, models, ["BTCUSDT"]) is None  # a few dozen 1s bars: not yet
        assert not (models / "LATEST").exists()
        more = walk("BTCUSDT", 1_500, seed=4, start_id=51, start_ts=few[-1].ts, price=few[-1].price,
                    step_ns=700_000_000)  # fmt: skip
        insert(db, *fold(model, more))
        version = train_once(mongo_url, datasets, models, ["BTCUSDT"])
    finally:
        c.close()
    assert version is not None and (models / "LATEST").read_text().strip() == version
    meta = json.loads((models / version / "metadata.json").read_text())
    assert (meta["symbol"], meta["interval"], meta["model"]) == ("BTCUSDT", "1s", "rf")
    assert meta["bars"] >= MIN_BARS and "backtest" in meta["evaluation"]["models"]["rf"]
