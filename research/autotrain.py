"""Training the inference service's model from the venue's own market data, on a schedule, inside the service.

``./mercury start`` sets ``MERCURY_RESEARCH_TRAIN_EVERY`` (seconds): the service then runs, that often, the
incremental ETL (research.etl: only what the MongoDB persister stored since the last run) and trains a random
forest on the first symbol's 1-second klines (research.model, walk-forward evaluation and the after-fee backtest
included), so the UI's Model panel has a current model once the simulator has traded for a few minutes. Until
there is enough history a round only logs why it trained nothing; the service keeps answering 503 meanwhile and
picks the new model up by its LATEST file. Off (0) by default: a deployment trains with ``python -m research.model``
where it wants.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pymongo
from prometheus_client import CollectorRegistry, Counter

from research.backtest import Fees
from research.etl import run_etl
from research.model import Params, load_bars, train

log = logging.getLogger("mercury.research.autotrain")

INTERVAL = "1s"  # minutes of simulator flow make hundreds of 1-second bars; 1-minute bars would take hours
MIN_BARS = 300


def train_once(mongodb_url: str, datasets: Path, models: Path, symbols: list[str], seed: int = 7) -> str | None:
    """One round: the incremental ETL of every symbol, then a model on the first one; the new version, or None
    when there is not enough history yet."""
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(mongodb_url, serverSelectionTimeoutMS=5_000)
    try:
        run_etl(client.get_default_database("mercury"), datasets, mongodb_url, symbols)
    finally:
        client.close()
    symbol = symbols[0]
    try:
        bars = load_bars(str(datasets), symbol, INTERVAL)
    except SystemExit as nothing:  # load_bars' answer for no dataset yet
        log.info("no model yet: %s", nothing)
        return None
    if len(bars) < MIN_BARS:
        log.info("no model yet: %d %s klines of %s, training waits for %d", len(bars), INTERVAL, symbol, MIN_BARS)
        return None
    try:
        version, meta = train(bars, models, Params(seed=seed, folds=3, trees=100), Fees.from_venue(symbol),
                              model="rf", source=str(datasets), symbol=symbol, interval=INTERVAL)  # fmt: skip
    except ValueError as short:  # too few usable rows once the features' warm-up is dropped
        log.info("no model yet: %s", short)
        return None
    log.info("trained model %s on %d %s klines of %s", version, meta["bars"], INTERVAL, symbol)
    return version


class TrainLoop(threading.Thread):
    """``train_once`` every ``every`` seconds (the first after one period: the venue needs history first)."""

    def __init__(
        self,
        every: float,
        mongodb_url: str,
        datasets: Path,
        models: Path,
        symbols: list[str],
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(name="autotrain", daemon=True)
        self.every, self.args = every, (mongodb_url, datasets, models, symbols)
        self.stopping = threading.Event()
        # trained / waiting (not enough history yet) / failed: a service stuck short of a model shows here
        self.rounds = Counter("research_training_rounds", "Scheduled training rounds by outcome", ["outcome"],
                              registry=registry or CollectorRegistry())  # fmt: skip

    def round(self) -> str | None:
        """One scheduled round, counted; the new version or None. Never raises: a failed round (MongoDB away, a bad
        dataset) must not end the service."""
        try:
            version = train_once(*self.args)
        except Exception as exc:
            log.warning("training round failed (%s: %s); the next one is in %s s", type(exc).__name__, exc,
                        self.every)  # fmt: skip
            self.rounds.labels(outcome="failed").inc()
            return None
        self.rounds.labels(outcome="trained" if version else "waiting").inc()
        return version

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            self.round()

    def stop(self) -> None:
        self.stopping.set()
