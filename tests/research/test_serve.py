"""The inference service over real HTTP (uvicorn in a thread) against the real MongoDB-protocol server: a model
trained on known klines, its prediction from the klines stored, and the error answers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import uvicorn

from persistence.klines import KlineModel
from research.backtest import Fees
from research.features import build_features
from research.model import Params, load_model, train
from research.serve import HISTORY, create_app
from tests.research.market import SPECS, client, fold, insert, mark_current, walk

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(mongo_url: str, models: Path) -> Iterator[str]:
    port = free_port()
    app = create_app(mongo_url, models, list(SPECS))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.mongo.close()


@pytest.fixture
def served(mongo_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    models = tmp_path / "models"
    with serving(mongo_url, models) as base:
        yield base, models


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read().decode()
            return r.status, json.loads(body) if r.headers.get_content_type() == "application/json" else body
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize("bucketed", [True, False], ids=["by-bucket", "store-before-buckets"])
def test_predict_from_stored_klines(served: tuple[str, Path], mongo_url: str, bucketed: bool) -> None:
    """The newest klines are read bucket by bucket down from the persister's clock, or by one range query from a
    store whose documents predate buckets: the same prediction either way."""
    base, models = served
    trades = walk("BTCUSDT", 4_000, seed=6, step_ns=300_000_000)  # about 20 minutes: across a 1s-kline bucket
    _, klines = fold(KlineModel(SPECS), trades)
    _, few = fold(KlineModel(SPECS), walk("ETHUSDT", 20, seed=7))
    c = client(mongo_url)
    insert(c.get_default_database(), [], klines + few)
    if bucketed:
        mark_current(c.get_default_database(), trades[-1])
    c.close()

    assert get(f"{base}/health") == (200, {"status": "ok", "model": None})
    status, body = get(f"{base}/api/v1/predict?symbol=BTCUSDT&interval=1s")
    assert status == 503 and body["code"] == -2001 and "no model" in body["msg"]

    bars = pd.DataFrame([k for k in klines if k["interval"] == "1s"]).set_index("open_time")
    version, _ = train(bars, models, Params(folds=3, trees=20), Fees(10, 10), model="rf", symbol="BTCUSDT")

    status, body = get(f"{base}/api/v1/predict?symbol=btcusdt&interval=1s")
    assert status == 200, body
    model, meta = load_model(models / version)
    window = bars.iloc[-HISTORY:]
    expected = model.predict_proba(build_features(window)[meta["features"]].iloc[[-1]].to_numpy())[0, 1]
    assert body["model"] == version and body["p_up"] == pytest.approx(expected, abs=1e-12)
    assert body["as_of_open_time"] == int(bars.index[-1]) and body["klines_used"] == HISTORY
    assert body["direction"] == ("UP" if expected > 0.5 else "DOWN")

    status, body = get(f"{base}/api/v1/predict?symbol=NOPE&interval=1s")
    assert status == 400 and body["code"] == -1121
    status, body = get(f"{base}/api/v1/predict?symbol=BTCUSDT&interval=7m")
    assert status == 400 and body["code"] == -1120
    status, body = get(f"{base}/api/v1/predict?symbol=ETHUSDT&interval=1s")
    assert status == 409 and "not enough history" in body["msg"]

    status, info = get(f"{base}/api/v1/model")
    assert status == 200 and info["version"] == version and "rf" in info["backtest_summary"]
    status, text = get(f"{base}/metrics")
    assert status == 200 and 'research_predictions_total{outcome="200"} 1.0' in text
    assert 'research_predictions_total{outcome="400"} 2.0' in text


def test_with_mongodb_away_predict_answers_a_json_503(tmp_path: Path) -> None:
    """A model is there but the market-data store is not: a JSON error the UI shows, never a bare 500."""
    _, klines = fold(KlineModel(SPECS), walk("BTCUSDT", 600, seed=5, step_ns=300_000_000))
    bars = pd.DataFrame([k for k in klines if k["interval"] == "1s"]).set_index("open_time")
    train(bars, tmp_path / "models", Params(folds=3, trees=5), Fees(10, 10), model="rf", symbol="BTCUSDT")
    with serving(f"mongodb://127.0.0.1:{free_port()}/gone", tmp_path / "models") as base:
        status, body = get(f"{base}/api/v1/predict?symbol=BTCUSDT&interval=1s")
    assert status == 503 and body["code"] == -1001 and "market data store unavailable" in body["msg"], body


def _up(url: str) -> bool:
    try:
        return get(url)[0] == 200
    except urllib.error.URLError:  # not listening yet
        return False


@contextlib.contextmanager
def service_process(models: Path, port: int, **extra: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m research.serve`` as the Procfile runs it (no training, MongoDB on a closed port), once it
    answers /health; killed on the way out if the test did not stop it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MERCURY_")}
    env |= {"MERCURY_RESEARCH_TRAIN_EVERY": "0", "MERCURY_MONGODB_URL": f"mongodb://127.0.0.1:{free_port()}/x"}
    env |= extra
    argv = [sys.executable, "-m", "research.serve", "--port", str(port), "--models", str(models)]
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _up(f"http://127.0.0.1:{port}/health"):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # reaps it and closes the pipe


@pytest.mark.parametrize("signals", [["SIGINT"], ["SIGTERM"], ["SIGINT", "SIGTERM"]], ids="+".join)
def test_a_stop_signal_ends_the_service_quietly(tmp_path: Path, signals: list[str]) -> None:
    """Ctrl-C under ``./mercury start`` is SIGINT to every process then honcho's SIGTERM: whichever uvicorn
    re-raises after its graceful stop, the service exits 0 without a traceback."""
    with service_process(tmp_path / "models", free_port()) as proc:
        for name in signals:
            proc.send_signal(getattr(signal, name))
            time.sleep(0.01)  # honcho's SIGTERM follows the terminal's SIGINT closely
        _, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr, stderr


def test_the_process_exports_on_its_metrics_port_like_the_others(tmp_path: Path) -> None:
    """With MERCURY_METRICS_PORT (the Procfile's, which the local Prometheus scrapes) the service's own series
    and the process metrics are on that port, and the app's /metrics gives the same series."""
    port, metrics = free_port(), free_port()
    with service_process(tmp_path / "models", port, MERCURY_METRICS_PORT=str(metrics)):
        assert get(f"http://127.0.0.1:{port}/api/v1/predict?symbol=NOPE")[0] == 400
        assert get(f"http://127.0.0.1:{port}/api/v1/predict?symbol=BTCUSDT")[0] == 503  # no model trained
        status, exported = get(f"http://127.0.0.1:{metrics}/metrics")
        _, served = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    for text in (exported, served):
        assert 'research_predictions_total{outcome="400"} 1.0' in text, text
        assert 'research_predictions_total{outcome="503"} 1.0' in text, text
        assert "process_cpu_seconds_total" in text, text
