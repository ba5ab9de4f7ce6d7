"""The ETL against the real MongoDB-protocol server (FerretDB in CI): known ticks and klines with known faults,
their counts in the data card, the kline rebuild check, and an incremental second run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from persistence.klines import KlineModel, tick_bucket
from research.etl import main, run_etl
from research.store import Cut, store_cut
from tests.research.market import SPECS, Db, client, fold, insert, mark_current, trade, walk

SYMBOL = "BTCUSDT"


@pytest.fixture
def db(mongo_url: str) -> Iterator[Db]:
    c = client(mongo_url)
    yield c.get_default_database()
    c.close()


def entry(card: dict[str, Any], kind: str, interval: str | None = None) -> dict[str, Any]:
    datasets = card["datasets"]
    assert isinstance(datasets, list)
    return next(d for d in datasets if d["symbol"] == SYMBOL and d["kind"] == kind and d.get("interval") == interval)


@pytest.mark.parametrize("bucketed", [True, False], ids=["by-bucket", "store-before-buckets"])
def test_round_trip_cleaning_rebuild_and_incremental(db: Db, mongo_url: str, tmp_path: Path, bucketed: bool) -> None:
    """Read by bucket up to the persister's offset, or by range from a store whose documents predate buckets: the
    same datasets and card either way."""
    trades = walk(SYMBOL, 300, seed=1)
    # reserved trade ids: the store gets a faulty tick in their place, the persister's klines never saw them
    faulty = {50, 80, 90}
    model = KlineModel(SPECS)
    ticks, klines = fold(model, [t for t in trades if t.trade_id not in faulty])
    by_id = {t.trade_id: t for t in trades}
    bad = []
    for tid, (price, ts, qty) in {
        50: (by_id[50].price * 3, by_id[50].ts, 5),  # outlier
        80: (by_id[80].price, by_id[10].ts, 5),  # out of order: stamped before earlier trades
        90: (by_id[90].price, by_id[90].ts, 0),  # invalid: no quantity
    }.items():
        t = trade(SYMBOL, tid, 3 * tid, ts, price, qty, True)
        bad.append(
            {
                "_id": f"{SYMBOL}:{tid}",
                "symbol": SYMBOL,
                "trade_id": tid,
                "price": price,
                "qty": qty,
                "quote_qty": price * qty,
                "taker_side": "BUY",
                "ts": t.ts,
                "out_seq": t.out_seq,
                "bucket": tick_bucket(tid),
            }
        )
    dup = dict(next(d for d in ticks if d["trade_id"] == 30))
    dup |= {"_id": f"{SYMBOL}:dup", "out_seq": dup["out_seq"] + 1}
    tampered = next(k for k in klines if k["interval"] == "1m")
    tampered["volume"] += 1  # a stored kline that disagrees with its trades
    insert(db, ticks + bad + [dup], klines)
    if bucketed:
        mark_current(db, trades[-1])
    assert store_cut(db) == (Cut(trades[-1].ts, {SYMBOL: 300}) if bucketed else None)  # how far and how it reads
    out = tmp_path / "datasets"

    card = run_etl(db, out, "test", [SYMBOL])
    tk = entry(card, "ticks")
    assert tk["rows_read"] == 297 + 3 + 1
    assert tk["cleaning"] == {
        "read": 301,
        "invalid": 1,
        "duplicates": 1,
        "out_of_order": 1,
        "outliers": 1,
        "trade_id_gaps": 3,
        "missing_trades": 3,
        "kept": 297,
    }
    stored = pd.read_parquet(str(tk["path"]))
    assert len(stored) == 297 and stored["trade_id"].is_monotonic_increasing
    assert set(stored["trade_id"]) == {d["trade_id"] for d in ticks}
    one_s, one_m = entry(card, "klines", "1s"), entry(card, "klines", "1m")
    assert one_s["rows_read"] == sum(k["interval"] == "1s" for k in klines)
    check_s, check_m = one_s["rebuild_check"], one_m["rebuild_check"]
    assert isinstance(check_s, dict) and isinstance(check_m, dict)
    assert check_s["rebuilt"] > 100 and check_s["matched"] == check_s["rebuilt"]
    assert check_m["mismatched"] == 1 and check_m["mismatched_open_times"] == [tampered["open_time"]]
    assert check_m["matched"] == check_m["rebuilt"] - 1 >= 1
    assert json.loads((out / "cards" / "card.json").read_text())["run"] == 1

    # second run: only the new trades are read, and the klines they close
    more = walk(SYMBOL, 100, seed=2, start_id=301, start_ts=trades[-1].ts, price=trades[-1].price)
    new_ticks, new_klines = fold(model, more)
    insert(db, new_ticks, new_klines)
    if bucketed:
        mark_current(db, more[-1])
        # a state written before the watermark kept trade ids: its next run reads the new ticks by out_seq once
        state = json.loads((out / "state.json").read_text())
        del state["symbols"][SYMBOL]["trade_id"]
        (out / "state.json").write_text(json.dumps(state))
    assert main(["--mongodb-url", mongo_url, "--out", str(out), "--symbol", SYMBOL]) == 0
    card2 = json.loads((out / "cards" / "card.json").read_text())
    assert card2["run"] == 2
    t2 = entry(card2, "ticks")
    assert t2["rows_read"] == 100 and t2["read_after_out_seq"] == 3 * 300
    assert t2["read_after_trade_id"] == (0 if bucketed else 300)
    assert t2["cleaning"]["kept"] == 100 and t2["cleaning"]["missing_trades"] == 0
    part = pd.read_parquet(out / "ticks" / SYMBOL / "part-000002.parquet")
    assert list(part["trade_id"]) == list(range(301, 401))
    s2 = entry(card2, "klines", "1s")
    assert s2["rows_read"] == sum(k["interval"] == "1s" for k in new_klines)
    c2 = s2["rebuild_check"]
    assert isinstance(c2, dict) and c2["rebuilt"] > 30 and c2["matched"] == c2["rebuilt"]

    # a third run with nothing new reads nothing
    card3 = run_etl(db, out, "test", [SYMBOL])
    assert card3["rows_read"] == 0 and entry(card3, "ticks")["read_after_trade_id"] == 400
