"""The market view's Model panel end to end: the production UI in Debian's headless Chromium (ui/e2e/model.mjs)
against the real inference service (research/serve.py, over HTTP from another origin, so its CORS answer counts)
reading klines from the real MongoDB-protocol server. The service starts without a model (the panel says so), a
model is trained while the page is open (the panel then shows the service's own call and the model's backtest),
a symbol without stored history gets the service's 409 shown plainly, an unreachable service and no service each
get their own message, and the page logs no other console error. Its screenshot goes to the test's directory, or
to docs/screenshots/model.png with MERCURY_UI_SCREENSHOTS=1."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest

from persistence.klines import KlineModel
from research.backtest import Fees
from research.model import Params, train
from tests.harness import MongoServer, free_port
from tests.research.market import SPECS, client, fold, insert, walk
from tests.research.test_serve import serving
from tests.ui.conftest import SCREENSHOTS, UiExchange, build_ui, chromium, run_script


@pytest.mark.timeout(400)
def test_model_panel(ui_exchange: UiExchange, mongo_server: MongoServer, tmp_path: Path) -> None:
    # a database of its own: the exchange's persister writes the flow's live klines to the test's other one, and
    # the prediction compared below must not move while the page and the test each ask for it
    research_db = mongo_server.url(f"research_{os.getpid()}_{time.monotonic_ns()}")
    # about ten minutes of BTCUSDT trades ending before now, as the persister would have stored them
    start = time.time_ns() - 900 * 1_000_000_000
    _, klines = fold(KlineModel(SPECS), walk("BTCUSDT", 2_000, seed=6, start_ts=start, step_ns=300_000_000))
    mongo = client(research_db)
    insert(mongo.get_default_database(), [], klines)
    mongo.close()
    bars = pd.DataFrame([k for k in klines if k["interval"] == "1s"]).set_index("open_time")
    models = tmp_path / "models"

    def train_model() -> None:
        train(bars, models, Params(folds=3, trees=20), Fees(10, 10), model="rf", symbol="BTCUSDT", interval="1s")

    build_ui()
    with serving(research_db, models) as research:
        docs = bool(os.environ.get("MERCURY_UI_SCREENSHOTS"))
        env = dict(os.environ, UI_URL=ui_exchange.url, RESEARCH_URL=research, CHROMIUM=chromium(),
                   UNREACHABLE_URL=f"http://127.0.0.1:{free_port()}",
                   SCREENSHOTS=str(SCREENSHOTS if docs else tmp_path))  # fmt: skip
        output = run_script("model.mjs", env, {"train-model": train_model}, tmp_path / "model-failure.png")
    assert "no model:" in output and "prediction:" in output and "unreachable:" in output, output
