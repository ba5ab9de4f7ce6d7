"""The inference service's own training round (research/autotrain.py) on known klines in a real FerretDB: nothing
with too little history, a model once there is enough, and the next round trains on what was added since."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from prometheus_client import CollectorRegistry

from persistence.klines import KlineModel
from research.autotrain import MIN_BARS, TrainLoop, train_once
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


def test_scheduled_rounds_are_counted_by_outcome(mongo_url: str, tmp_path: Path) -> None:
    """A round short of history counts as waiting and one that cannot reach MongoDB as failed, without raising:
    the service's metrics show a model that is not coming."""
    registry = CollectorRegistry()
    waiting = TrainLoop(60, mongo_url, tmp_path / "d", tmp_path / "m", ["BTCUSDT"], registry)
    assert waiting.round() is None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    failing = TrainLoop(60, f"mongodb://127.0.0.1:{closed}/x", tmp_path / "d2", tmp_path / "m2", ["BTCUSDT"])
    failing.rounds = waiting.rounds  # one counter, both outcomes
    assert failing.round() is None
    count = registry.get_sample_value
    assert count("research_training_rounds_total", {"outcome": "waiting"}) == 1
    assert count("research_training_rounds_total", {"outcome": "failed"}) == 1
    assert count("research_training_rounds_total", {"outcome": "trained"}) is None
