"""``python -m research.etl``: ticks and klines from the MongoDB persister's store into versioned Parquet datasets.

Each run reads only what is new since the last run (a watermark per symbol: the last tick's ``out_seq`` and trade id
and the last kline ``open_time`` of each interval, kept in ``state.json``), by bucket up to the persister's offset
(persistence.buckets: on FerretDB a range query costs the whole stored series, a bucket only itself), so a run costs
what is new, not what is stored; a store from before buckets is read by range. It cleans what it read
(research.data_clean, every drop counted), rebuilds klines from the clean ticks with the persister's own ``Kline``
arithmetic and checks them against the stored ones, and writes one Parquet part per symbol (and interval) plus a
JSON data card for the run.

Layout under ``--out``::

    state.json                              watermarks and the last run number
    cards/run-000001.json                   the data card of run 1 (card.json: the latest)
    ticks/BTCUSDT/part-000001.parquet       the clean ticks run 1 read
    klines/BTCUSDT/1m/part-000001.parquet   the clean stored klines run 1 read
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pymongo

from persistence import buckets
from persistence.klines import INTERVALS
from research.data_clean import KLINE_COLUMNS, TICK_COLUMNS, clean_klines, clean_ticks, content_hash
from research.data_rebuild import check_klines, rebuild_klines
from research.store import Cut, store_cut
from wire.config import load_settings
from wire.venue import DEFAULT_VENUE, load_venue

Db = pymongo.database.Database[dict[str, Any]]
STATE = "state.json"


@dataclass(slots=True)
class Watermark:
    out_seq: int = 0  # last tick read
    trade_id: int = 0  # its trade id (0 with an out_seq: a state written before it was kept)
    ts: int = -1  # its time: klines rebuilt from later ticks alone are whole only if they open after it
    open_time: dict[str, int] = field(default_factory=dict)  # per interval, last kline read

    def as_json(self) -> dict[str, Any]:
        return {"out_seq": self.out_seq, "trade_id": self.trade_id, "ts": self.ts, "open_time": dict(self.open_time)}


def load_state(out: Path) -> tuple[int, dict[str, Watermark]]:
    path = out / STATE
    if not path.exists():
        return 0, {}
    raw = json.loads(path.read_text())
    marks = {
        s: Watermark(
            int(m["out_seq"]), int(m.get("trade_id", 0)), int(m["ts"]), {k: int(v) for k, v in m["open_time"].items()}
        )
        for s, m in raw["symbols"].items()
    }
    return int(raw["run"]), marks


def read_ticks(db: Db, symbol: str, mark: Watermark, cut: Cut | None) -> pd.DataFrame:
    """The ticks after the watermark, in out_seq order (cleaning's order)."""
    if cut is not None and (mark.trade_id or not mark.out_seq):
        scan = buckets.ticks(symbol, mark.trade_id + 1, cut.trade_ids.get(symbol, 0))
        docs = sorted(buckets.run_sync(db.ticks, scan), key=lambda d: d["out_seq"])
    else:
        docs = list(db.ticks.find({"symbol": symbol, "out_seq": {"$gt": mark.out_seq}}, sort=[("out_seq", 1)]))
    return pd.DataFrame(docs, columns=["_id", *TICK_COLUMNS])


def read_klines(db: Db, symbol: str, interval: str, after_open_time: int, cut: Cut | None) -> pd.DataFrame:
    top = 1 << 62 if cut is None else cut.ts
    scan = buckets.klines(symbol, interval, after_open_time + 1, top, bucketed=cut is not None)
    return pd.DataFrame(buckets.run_sync(db.klines, scan), columns=["_id", *KLINE_COLUMNS])


def _write(frame: pd.DataFrame, path: Path) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, engine="pyarrow", index=False)
    return {"path": str(path), "rows": len(frame), "content_hash": content_hash(frame)}


def _span(frame: pd.DataFrame, column: str) -> list[int] | None:
    return None if frame.empty else [int(frame[column].iloc[0]), int(frame[column].iloc[-1])]


def redacted(url: str) -> str:
    """The URL without its password, for the data card."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{userinfo.split(':')[0]}:***@{host}" if at else url


def run_etl(db: Db, out: Path, source: str, symbols: Sequence[str], outlier_pct: float = 20.0) -> dict[str, Any]:
    """One incremental run; returns its data card (also written to cards/)."""
    started = time.perf_counter()
    last_run, marks = load_state(out)
    run = last_run + 1
    card: dict[str, Any] = {"run": run, "source": redacted(source), "created_unix": int(time.time()), "datasets": []}
    rows_read = 0
    cut = store_cut(db)
    for symbol in symbols:
        mark = marks.setdefault(symbol, Watermark())
        raw = read_ticks(db, symbol, mark, cut)
        rows_read += len(raw)
        ticks, tick_counts = clean_ticks(raw, outlier_pct)
        entry: dict[str, Any] = {
            "symbol": symbol,
            "kind": "ticks",
            "read_after_out_seq": mark.out_seq,
            "read_after_trade_id": mark.trade_id,
            "rows_read": len(raw),
            "cleaning": tick_counts,
            "span_ts": _span(ticks, "ts"),
            "span_out_seq": _span(ticks, "out_seq"),
        }
        if not ticks.empty:
            entry |= _write(ticks, out / "ticks" / symbol / f"part-{run:06d}.parquet")
        rebuilt = rebuild_klines(ticks, symbol, mark.ts)
        if not raw.empty:
            mark.out_seq = int(raw["out_seq"].max())
            mark.trade_id = int(raw["trade_id"].max())
        if not ticks.empty:
            mark.ts = int(ticks["ts"].iloc[-1])
        card["datasets"].append(entry)
        for interval, _ in INTERVALS:
            after = mark.open_time.get(interval, -1)
            raw_k = read_klines(db, symbol, interval, after, cut)
            rows_read += len(raw_k)
            klines, kline_counts = clean_klines(raw_k, interval)
            k_entry: dict[str, Any] = {
                "symbol": symbol,
                "kind": "klines",
                "interval": interval,
                "read_after_open_time": after,
                "rows_read": len(raw_k),
                "cleaning": kline_counts,
                "span_open_time": _span(klines, "open_time"),
                "rebuild_check": check_klines(rebuilt.get(interval, []), klines),
            }
            if not klines.empty:
                k_entry |= _write(klines, out / "klines" / symbol / interval / f"part-{run:06d}.parquet")
            if not raw_k.empty:
                mark.open_time[interval] = int(raw_k["open_time"].max())
            card["datasets"].append(k_entry)
    seconds = time.perf_counter() - started
    card["rows_read"] = rows_read
    card["seconds"] = round(seconds, 3)
    cards = out / "cards"
    cards.mkdir(parents=True, exist_ok=True)
    text = json.dumps(card, indent=2, sort_keys=True)
    (cards / f"run-{run:06d}.json").write_text(text)
    (cards / "card.json").write_text(text)
    # the state is written last: a run that dies before it is redone whole by the next one
    state = {"run": run, "symbols": {s: m.as_json() for s, m in marks.items()}}
    (out / STATE).write_text(json.dumps(state, indent=2, sort_keys=True))
    return card


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m research.etl", description=__doc__.split("\n")[0])
    parser.add_argument("--mongodb-url", default=load_settings().mongodb_url)
    parser.add_argument("--out", type=Path, default=Path("var/research/datasets"))
    parser.add_argument("--symbol", action="append", help="default: every symbol of the venue")
    parser.add_argument("--outlier-pct", type=float, default=20.0, help="drop a tick this far from the median")
    args = parser.parse_args(argv)
    symbols = args.symbol or [s.symbol for s in load_venue(DEFAULT_VENUE).symbols]
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(args.mongodb_url, serverSelectionTimeoutMS=5_000)
    try:
        card = run_etl(client.get_default_database("mercury"), args.out, args.mongodb_url, symbols, args.outlier_pct)
    finally:
        client.close()
    for d in card["datasets"]:
        name = d["symbol"] + ("" if d["kind"] == "ticks" else "/" + d["interval"])
        print(f"run {card['run']} {d['kind']:6} {name:12} read {d['rows_read']:8} cleaning {d['cleaning']}")
    print(f"run {card['run']}: {card['rows_read']} rows in {card['seconds']} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
