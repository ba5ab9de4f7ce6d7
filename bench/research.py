"""Research pipeline benchmark: ETL rows/s from the real MongoDB-protocol server, and the inference service's
request latency over HTTP.

Run ``python -m bench.research`` (under a minute; ``--help`` for the knobs). It starts PostgreSQL and FerretDB
(tests.harness), stores ``--trades`` trades of a seeded random walk on BTCUSDT as the MongoDB persister would
(their ticks, and the closed klines persistence.klines.KlineModel folds from them), and measures:

- **ETL, first run**: research.etl.run_etl reading every tick and kline, cleaning, rebuilding the klines from
  the ticks, checking them and writing Parquet; rows/s counts ticks and klines read;
- **ETL, incremental**: a second run after ``--trades / 10`` more trades: only the new rows are read;
- **inference**: a random forest trained on the 1s klines, then ``--requests`` sequential (after 5 untimed)
  ``GET /api/v1/predict?symbol=BTCUSDT&interval=1s`` to research.serve (uvicorn in a thread of this process),
  each reading the last 120 klines from FerretDB by bucket, building features and predicting; p50/p99 of the wall time.

It writes ``bench/reports/research.md``; every figure in it comes from this run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import uvicorn

from bench.machine import REPO, machine_markdown
from persistence.klines import KlineModel
from persistence.mongo import INDEXES
from research.backtest import Fees
from research.etl import run_etl
from research.model import Params, train
from research.serve import HISTORY, create_app, newest_klines
from tests.harness import MongoServer, PostgresServer, free_port
from tests.research.market import SPECS, client, fold, insert, mark_current, walk

REPORT = REPO / "bench" / "reports" / "research.md"
SYMBOL = "BTCUSDT"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.research", description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20_261_206)
    args = parser.parse_args(argv)
    postgres = PostgresServer()
    postgres.start()
    mongo = MongoServer(postgres)
    mongo.start()
    url = mongo.url("bench_research")
    try:
        with tempfile.TemporaryDirectory(prefix="mercury-bench-research-") as tmp:
            out = Path(tmp)
            c = client(url)
            db = c.get_default_database()
            for collection, indexes in INDEXES.items():  # the persister's indexes: the reads depend on them
                for keys, options in indexes:
                    db[collection].create_index(keys, **options)
            model = KlineModel(SPECS)
            trades = walk(SYMBOL, args.trades, seed=args.seed, step_ns=200_000_000)
            ticks, klines = fold(model, trades)
            print(f"storing {len(ticks):,} ticks and {len(klines):,} klines ...", flush=True)
            for i in range(0, len(ticks), 1_000):
                db.ticks.insert_many(ticks[i : i + 1_000])
            db.klines.insert_many(klines)
            mark_current(db, trades[-1])  # the layout and offset the persister leaves: reads go by bucket
            first = run_etl(db, out / "datasets", url, [SYMBOL])
            more = walk(
                SYMBOL, args.trades // 10, args.seed + 1, args.trades + 1, trades[-1].ts, trades[-1].price, 200_000_000
            )
            insert(db, *fold(model, more))
            mark_current(db, more[-1])
            second = run_etl(db, out / "datasets", url, [SYMBOL])
            mismatched = sum(
                d["rebuild_check"]["mismatched"]
                for card in (first, second)
                for d in card["datasets"]
                if d["kind"] == "klines"
            )
            bars = pd.DataFrame([k for k in klines if k["interval"] == "1s"]).set_index("open_time")
            version, _ = train(bars, out / "models", Params(folds=3, trees=100), Fees(10, 10), model="rf")
            port = free_port()
            app = create_app(url, out / "models", list(SPECS))
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            while not server.started:
                time.sleep(0.02)
            target = f"http://127.0.0.1:{port}/api/v1/predict?symbol={SYMBOL}&interval=1s"
            times = []
            for i in range(args.requests + 5):
                started = time.perf_counter()
                with urllib.request.urlopen(target, timeout=10) as r:
                    r.read()
                if i >= 5:  # the first requests warm the connection pool and the model's load
                    times.append(time.perf_counter() - started)
            reads, ranged = [], []
            query = {"symbol": SYMBOL, "interval": "1s"}
            for _ in range(30):  # the service's own read, alone: where a request's time goes
                started = time.perf_counter()
                newest_klines(db, SYMBOL, "1s", HISTORY)
                reads.append(time.perf_counter() - started)
                started = time.perf_counter()  # and the one range query it replaced, for the ratio
                list(db.klines.find(query, sort=[("open_time", -1)], limit=HISTORY))
                ranged.append(time.perf_counter() - started)
            server.should_exit = True
            thread.join(10)
            app.state.mongo.close()
            c.close()
    finally:
        mongo.stop()
        postgres.stop()
    rows = [
        ("first run (everything)", first["rows_read"], first["seconds"]),
        ("incremental (new trades only)", second["rows_read"], second["seconds"]),
    ]
    out_lines = [
        f"# Research: ETL and inference ({args.trades:,} trades)",
        "",
        f"Reproduce: `python -m bench.research` (seed {args.seed})",
        "",
        machine_markdown(),
        "",
        "One process: the ETL and the service talk to FerretDB (on PostgreSQL) on this machine. Rows read are ticks"
        " plus the klines of every stored interval; a run covers reading, cleaning, the kline rebuild and check, and"
        " writing Parquet and the data card.",
        "",
        "| ETL | rows read | seconds | rows/s |",
        "|---|---:|---:|---:|",
        *[f"| {name} | {n:,} | {s:.2f} | {n / s:,.0f} |" for name, n, s in rows],
        "",
        f"Kline rebuild check: {mismatched} stored klines differ from the ones rebuilt from the ticks.",
        "",
        f"Inference: {args.requests} sequential requests after 5 untimed, model {version} (random forest, 100"
        " trees), each reading 120 klines from FerretDB, building the features and predicting.",
        "",
        "The service reads the newest klines bucket by bucket (persistence.buckets: equality queries, which FerretDB"
        " 1.24 pushes down to PostgreSQL) down from the persister's clock. The one range query it replaced (symbol,"
        " interval, newest first, limit 120) is measured beside it in the same run: FerretDB sorts and limits it in"
        " its own memory over every kline of the series, so its time grows with the stored history. A real MongoDB"
        " serves both from the persister's indexes (not measured here).",
        "",
        "| predict | p50 (ms) | p99 (ms) | mean (ms) |",
        "|---|---:|---:|---:|",
        f"| GET /api/v1/predict | {percentile(times, 0.5) * 1e3:.2f} | {percentile(times, 0.99) * 1e3:.2f} |"
        f" {statistics.fmean(times) * 1e3:.2f} |",
        f"| its MongoDB read alone (research.serve.newest_klines) | {percentile(reads, 0.5) * 1e3:.2f} |"
        f" {percentile(reads, 0.99) * 1e3:.2f} | {statistics.fmean(reads) * 1e3:.2f} |",
        f"| the range query it replaced (same run) | {percentile(ranged, 0.5) * 1e3:.2f} |"
        f" {percentile(ranged, 0.99) * 1e3:.2f} | {statistics.fmean(ranged) * 1e3:.2f} |",
        "",
        f"Bucket read vs. range query, p50 in this run: {percentile(ranged, 0.5) / percentile(reads, 0.5):.1f}x"
        " faster.",
        "",
    ]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    out_lines += [f"Load average at the end of the run (1, 5, 15 min): {load}; other work shares the machine.", ""]
    REPORT.write_text("\n".join(out_lines))
    print("\n".join(out_lines[8:]))
    print(f"wrote {REPORT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
