"""``python -m research.serve``: the inference service. ``GET /api/v1/predict?symbol=BTCUSDT&interval=1m`` builds
the features of the latest closed klines in MongoDB (MERCURY_MONGODB_URL) and returns the latest model's P(up)
for the next interval; ``/api/v1/model`` its metadata and backtest summary; ``/health``; ``/metrics``. With
MERCURY_METRICS_PORT set (the Procfile does) the same series, with the process metrics, are also exported on that
port like every other Mercury process, so the local Prometheus finds it by the Procfile (deploy/targets.py).

It starts without a model (predict answers 503 until ``research.model train`` writes one) and looks for a new
``LATEST`` version on each request, so a retrain needs no restart. Errors are ``{"code": ..., "msg": ...}``, the
gateways' shape: 400 for a bad symbol or interval, 409 when the symbol has too little history, 503 with no model.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pymongo
import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)

from persistence import buckets
from persistence.klines import INTERVALS, Doc
from research.autotrain import TrainLoop
from research.features import WARMUP, build_features
from research.model import load_model
from research.store import store_cut
from wire.config import load_settings
from wire.process import run_until_stopped
from wire.venue import DEFAULT_VENUE, load_venue

HISTORY = 4 * WARMUP  # klines read per prediction: the features need WARMUP, the exponential RSI settles over more
KLINE_FIELDS = ("open_time", "open", "high", "low", "close", "volume", "trades", "taker_buy_volume")


class ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


@dataclass(slots=True)
class Loaded:
    version: str
    model: Any
    meta: dict[str, Any]


class ModelStore:
    """The latest trained model, reloaded when ``LATEST`` names another version."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loaded: Loaded | None = None
        self.lock = threading.Lock()

    def current(self) -> Loaded | None:
        try:
            version = (self.root / "LATEST").read_text().strip()
        except FileNotFoundError:
            return None
        with self.lock:
            if self.loaded is None or self.loaded.version != version:
                model, meta = load_model(self.root / version)
                self.loaded = Loaded(version, model, meta)
            return self.loaded


def newest_klines(db: pymongo.database.Database[Doc], symbol: str, interval: str, n: int) -> list[Doc]:
    """The last ``n`` stored klines of a series, oldest first: read bucket by bucket down from the persister's
    clock (persistence.buckets), so a prediction costs the same whatever the stored history."""
    cut = store_cut(db)
    top = 1 << 62 if cut is None else cut.ts
    scan = buckets.klines(symbol, interval, 0, top, descending=True, limit=n, bucketed=cut is not None)
    return buckets.run_sync(db.klines, scan)[::-1]


def create_app(
    mongodb_url: str, models: Path, symbols: Sequence[str], registry: CollectorRegistry | None = None
) -> FastAPI:
    """The service; its series go to ``registry`` (a new one by default: tests start several apps in one
    process; ``main`` passes the process-wide one, which also holds the process metrics)."""
    app = FastAPI(title="Mercury research inference")
    # the trading UI reads it from another origin when it is served by a gateway's own port (the front door
    # serves both under one origin): read-only GETs, no credentials, so any origin may
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET"])
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(mongodb_url, serverSelectionTimeoutMS=3_000)
    db = client.get_default_database("mercury")
    store = ModelStore(models)
    known = set(symbols)
    widths = dict(INTERVALS)
    registry = registry or CollectorRegistry()
    predictions = Counter("research_predictions", "Predict requests by outcome", ["outcome"], registry=registry)
    latency = Histogram("research_predict_seconds", "Predict request time", registry=registry)

    @app.exception_handler(ApiError)
    async def api_error(_: Any, exc: ApiError) -> JSONResponse:
        return JSONResponse({"code": exc.code, "msg": exc.msg}, status_code=exc.status)

    def require_model() -> Loaded:
        loaded = store.current()
        if loaded is None:
            raise ApiError(503, -2001, f"no model trained yet under {models}: run python -m research.model train")
        return loaded

    @app.get("/health")
    def health() -> dict[str, Any]:
        loaded = store.current()
        return {"status": "ok", "model": loaded.version if loaded else None}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/model")
    def model_info() -> dict[str, Any]:
        loaded = require_model()
        meta = loaded.meta
        summary = {name: m["backtest"] for name, m in meta["evaluation"]["models"].items()}
        return meta | {"backtest_summary": summary}

    @app.get("/api/v1/predict")
    def predict(symbol: str = "", interval: str = "1m") -> dict[str, Any]:
        started = time.perf_counter()
        try:
            result = _predict(symbol.upper(), interval)
        except ApiError as exc:
            predictions.labels(outcome=str(exc.status)).inc()
            raise
        predictions.labels(outcome="200").inc()
        latency.observe(time.perf_counter() - started)
        return result

    def _predict(symbol: str, interval: str) -> dict[str, Any]:
        if symbol not in known:
            raise ApiError(400, -1121, f"Invalid symbol {symbol!r}: one of {sorted(known)}")
        if interval not in widths:
            raise ApiError(400, -1120, f"Invalid interval {interval!r}: one of {list(widths)}")
        loaded = require_model()
        try:
            docs = newest_klines(db, symbol, interval, HISTORY)
        except pymongo.errors.PyMongoError as exc:  # MongoDB away: a JSON 503 the UI can show, not a bare 500
            raise ApiError(503, -1001, f"market data store unavailable: {type(exc).__name__}") from None
        bars = pd.DataFrame(docs, columns=list(KLINE_FIELDS)).set_index("open_time")
        features = build_features(bars) if len(bars) else pd.DataFrame()
        columns = loaded.meta["features"]
        if len(features) == 0 or not set(columns) <= set(features.columns) or features.iloc[-1].isna().any():
            raise ApiError(
                409, -2002, f"not enough history: {len(bars)} closed {interval} klines of {symbol}, need {WARMUP + 1}"
            )
        row = features[columns].iloc[[-1]].to_numpy()
        p_up = float(loaded.model.predict_proba(row)[0, 1])
        last = int(bars.index[-1])
        return {
            "symbol": symbol,
            "interval": interval,
            "model": loaded.version,
            "as_of_open_time": last,  # the last closed kline the features saw
            "for_open_time": last + widths[interval],
            "p_up": p_up,
            "direction": "UP" if p_up > 0.5 else "DOWN",
            "klines_used": len(bars),
        }

    app.state.mongo = client
    return app


def main(argv: Sequence[str] | None = None) -> int:
    settings = load_settings()
    parser = argparse.ArgumentParser(prog="python -m research.serve")
    parser.add_argument("--models", type=Path, default=Path("var/research/models"))
    parser.add_argument("--host", default=settings.research_host)
    parser.add_argument("--port", type=int, default=settings.research_port)
    args = parser.parse_args(argv)
    venue = load_venue(settings.venue_file or DEFAULT_VENUE)
    symbols = [s.symbol for s in venue.symbols]
    app = create_app(settings.mongodb_url, args.models, symbols, REGISTRY)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    trainer = None
    if settings.research_train_every > 0:  # the local run trains on the simulator's klines (research.autotrain)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        trainer = TrainLoop(settings.research_train_every, settings.mongodb_url, Path("var/research/datasets"),
                            args.models, symbols, REGISTRY)  # fmt: skip
        trainer.start()
    try:
        run_until_stopped(lambda: uvicorn.run(app, host=args.host, port=args.port, log_level="warning"))
    finally:
        if trainer is not None:
            trainer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
