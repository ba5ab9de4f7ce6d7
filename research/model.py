"""``python -m research.model train``: a next-interval direction model (logistic regression and a random forest)
with walk-forward, time-ordered, purged validation, naive baselines, and the after-fee backtest of its signal.

Validation: the rows (bars with every feature defined) are cut into ``folds + 1`` consecutive blocks; fold ``k``
trains on every row before block ``k`` (expanding window) less the last ``purge`` rows, whose labels (the next
close) reach into the test block, and tests on block ``k``. Each model is scored on the out-of-sample predictions
of all folds together; the signal (+1 when P(up) > 0.5, else -1) is traded by research.backtest.backtest_signal
at the next bar's open with the venue's taker fee on every change of position.

Artifacts: ``<models>/<version>/model.pickle`` (the chosen model fitted on all rows) and ``metadata.json``
(training data hash, features, params, every candidate's metrics and backtest); ``<models>/LATEST`` names the
last version trained. The version is a hash of the data, params and seed, so that a retrain of the same is the
same version.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from research.backtest import Fees, Result, backtest_signal
from research.data_clean import content_hash
from research.features import build_features, target

MODELS = ("logreg", "rf")
BASELINES = ("majority", "last_sign")


@dataclass(frozen=True, slots=True)
class Params:
    seed: int = 7
    folds: int = 5
    purge: int = 2  # rows dropped between train and test: the label of row t is the close of t + 1
    trees: int = 200
    max_depth: int = 4
    min_leaf: int = 20
    c: float = 1.0  # inverse regularization of the logistic regression


def make_model(name: str, p: Params) -> Any:
    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(C=p.c, max_iter=1_000))
    if name == "rf":
        return RandomForestClassifier(
            n_estimators=p.trees, max_depth=p.max_depth, min_samples_leaf=p.min_leaf, random_state=p.seed, n_jobs=1
        )
    raise ValueError(f"unknown model {name!r}")


def load_model(directory: Path) -> tuple[Any, dict[str, Any]]:
    """The fitted model and metadata of a version directory; pickles are trusted here: the trainer wrote them."""
    meta = json.loads((directory / "metadata.json").read_text())
    return pickle.loads((directory / "model.pickle").read_bytes()), meta


def dataset(bars: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Features and labels of the rows where both are defined, in time order."""
    x, y = build_features(bars), target(bars)
    keep = x.notna().all(axis=1) & y.notna()
    return x[keep], y[keep].astype(int)


def walk_forward(n: int, folds: int, purge: int) -> list[tuple[np.ndarray, np.ndarray]]:
    bounds = np.linspace(0, n, folds + 2).astype(int)
    splits = []
    for k in range(1, folds + 1):
        start, end = bounds[k], bounds[k + 1]
        train = np.arange(0, max(0, start - purge))
        if len(train) and end > start:
            splits.append((train, np.arange(start, end)))
    return splits


def _baseline(name: str, x_train: pd.DataFrame, y_train: pd.Series, x_test: pd.DataFrame) -> np.ndarray:
    """P(up) of a naive rule, its probabilities the frequencies seen in training."""
    if name == "majority":
        return np.full(len(x_test), float(y_train.mean()))
    # last_sign: tomorrow moves like today; P(up | last move) from the training rows
    up_after_up = float(y_train[x_train["ret_1"] > 0].mean()) if (x_train["ret_1"] > 0).any() else 0.5
    up_after_down = float(y_train[x_train["ret_1"] <= 0].mean()) if (x_train["ret_1"] <= 0).any() else 0.5
    return np.where(x_test["ret_1"].to_numpy() > 0, up_after_up, up_after_down)


def scores(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    pred = (prob > 0.5).astype(int)
    auc = float(roc_auc_score(y, prob)) if len(np.unique(y)) == 2 and len(np.unique(prob)) > 1 else 0.5
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "roc_auc": auc,
        "log_loss": float(log_loss(y, np.clip(prob, 1e-6, 1 - 1e-6), labels=[0, 1])),
        "up_rate_predicted": float(pred.mean()),
    }


def signal_backtest(bars: pd.DataFrame, prob: pd.Series, fees: Fees, size: int) -> Result:
    """After-fee backtest of +1/-1 on P(up) > 0.5, flat where there is no out-of-sample prediction."""
    signal = pd.Series(np.where(prob > 0.5, 1.0, -1.0), index=prob.index).reindex(bars.index)
    close = bars["close" if "close" in bars else "Close"]
    cash = float(close.max()) * size  # the position's notional is at most the starting cash: no leverage
    return backtest_signal(bars, signal, fees, size=size, cash=cash)


def out_of_sample(bars: pd.DataFrame, p: Params, name: str) -> pd.Series:
    """A candidate's walk-forward P(up) on every test row (each fold's model fitted on the rows before it)."""
    x, y = dataset(bars)
    splits = walk_forward(len(x), p.folds, p.purge)
    if not splits:
        raise ValueError(f"{len(x)} usable rows: too few for {p.folds} folds")
    probs = []
    for train_rows, test_rows in splits:
        if name in BASELINES:
            probs.append(_baseline(name, x.iloc[train_rows], y.iloc[train_rows], x.iloc[test_rows]))
        else:
            model = make_model(name, p).fit(x.iloc[train_rows].to_numpy(), y.iloc[train_rows].to_numpy())
            probs.append(model.predict_proba(x.iloc[test_rows].to_numpy())[:, 1])
    index = x.index[np.concatenate([test for _, test in splits])]
    return pd.Series(np.concatenate(probs), index=index)


def trade_signal(bars: pd.DataFrame, prob: pd.Series, fees: Fees, size: int) -> dict[str, float]:
    m = signal_backtest(bars, prob, fees, size).metrics
    keys = ("total_return", "sharpe", "max_drawdown", "trades", "fees_paid", "turnover")
    return {k: float(m[k]) for k in keys if k in m}


def evaluate(bars: pd.DataFrame, p: Params, fees: Fees, size: int = 1) -> dict[str, Any]:
    x, y = dataset(bars)
    splits = walk_forward(len(x), p.folds, p.purge)
    if not splits:
        raise ValueError(f"{len(x)} usable rows: too few for {p.folds} folds")
    test_index = np.concatenate([test for _, test in splits])
    y_test = y.to_numpy()[test_index]
    results: dict[str, Any] = {}
    for name in BASELINES + MODELS:
        prob = out_of_sample(bars, p, name)
        results[name] = scores(y_test, prob.to_numpy()) | {"backtest": trade_signal(bars, prob, fees, size)}
    buy_hold = trade_signal(bars, pd.Series(1.0, index=x.index[test_index]), fees, size)
    return {
        "rows": len(x),
        "test_rows": len(test_index),
        "folds": len(splits),
        "up_rate": float(y_test.mean()),
        "models": results,
        "buy_and_hold": buy_hold,
    }


def train(
    bars: pd.DataFrame,
    out: Path,
    p: Params,
    fees: Fees,
    *,
    model: str = "logreg",
    size: int = 1,
    source: str = "",
    symbol: str = "",
    interval: str = "",
) -> tuple[str, dict[str, Any]]:
    """Evaluate every candidate, fit ``model`` on all rows, write the artifacts; returns (version, metadata)."""
    x, y = dataset(bars)
    data_hash = content_hash(bars.reset_index())
    evaluation = evaluate(bars, p, fees, size)
    params = asdict(p)
    version = hashlib.sha256(json.dumps([data_hash, params, model, size], sort_keys=True).encode()).hexdigest()[:12]
    fitted = make_model(model, p).fit(x.to_numpy(), y.to_numpy())
    meta: dict[str, Any] = {
        "version": version,
        "model": model,
        "source": source,
        "symbol": symbol,
        "interval": interval,
        "data_hash": data_hash,
        "bars": len(bars),
        "span": [str(bars.index[0]), str(bars.index[-1])],
        "features": list(x.columns),
        "params": params,
        "fees": {"maker_bps": fees.maker_bps, "taker_bps": fees.taker_bps},
        "size": size,
        "evaluation": evaluation,
    }
    directory = out / version
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.pickle").write_bytes(pickle.dumps(fitted))
    (directory / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    (out / "LATEST").write_text(version + "\n")
    return version, meta


def load_bars(source: str, symbol: str, interval: str) -> pd.DataFrame:
    """``goog`` / ``eurusd``: backtesting.py's samples; a directory: the ETL's datasets (klines of ``symbol`` and
    ``interval``, every part, indexed by open time in ns)."""
    if source.lower() in ("goog", "eurusd"):
        from backtesting import test  # noqa: PLC0415  (imported only when asked: it loads its sample files)

        frame: pd.DataFrame = getattr(test, source.upper())
        return frame
    parts = sorted((Path(source) / "klines" / symbol / interval).glob("part-*.parquet"))
    if not parts:
        raise SystemExit(f"no klines for {symbol} {interval} under {source}")
    bars = pd.concat([pd.read_parquet(p) for p in parts]).drop_duplicates("open_time", keep="last")
    return bars.sort_values("open_time").set_index("open_time")


def print_table(meta: dict[str, Any]) -> None:
    ev = meta["evaluation"]
    print(f"{meta['source']} {meta['symbol']} {meta['interval']}: {ev['rows']} rows, {ev['test_rows']} out of sample")
    print(f"{'model':10} {'accuracy':>8} {'roc_auc':>8} {'log_loss':>8} {'return':>8} {'sharpe':>7} {'trades':>6}")
    rows = dict(ev["models"]) | {"buy_hold": {"backtest": ev["buy_and_hold"]}}
    for name, m in rows.items():
        bt = m["backtest"]
        print(
            f"{name:10} {m.get('accuracy', float('nan')):8.4f} {m.get('roc_auc', float('nan')):8.4f} "
            f"{m.get('log_loss', float('nan')):8.4f} {bt['total_return']:8.4f} {bt.get('sharpe', 0):7.3f} "
            f"{int(bt.get('trades', 0)):6}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m research.model")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="evaluate, fit and save a model")
    t.add_argument("--data", default="var/research/datasets", help="ETL output directory, or goog / eurusd")
    t.add_argument("--symbol", default="BTCUSDT")
    t.add_argument("--interval", default="1m")
    t.add_argument("--model", choices=MODELS, default="logreg")
    t.add_argument("--out", type=Path, default=Path("var/research/models"))
    t.add_argument("--seed", type=int, default=7)
    t.add_argument("--folds", type=int, default=5)
    t.add_argument("--purge", type=int, default=2)
    t.add_argument("--trees", type=int, default=200)
    t.add_argument("--size", type=int, default=1, help="lots traded by the backtest")
    t.add_argument("--fee-bps", type=int, help="taker fee of the backtest; default: the venue's for --symbol")
    args = parser.parse_args(argv)
    bars = load_bars(args.data, args.symbol, args.interval)
    fees = (
        Fees(taker_bps=args.fee_bps, maker_bps=args.fee_bps)
        if args.fee_bps is not None
        else Fees.from_venue(args.symbol)
    )
    params = Params(seed=args.seed, folds=args.folds, purge=args.purge, trees=args.trees)
    is_sample = args.data.lower() in ("goog", "eurusd")
    version, meta = train(
        bars,
        args.out,
        params,
        fees,
        model=args.model,
        size=args.size,
        source=args.data,
        symbol=args.data.upper() if is_sample else args.symbol,
        interval="sample" if is_sample else args.interval,
    )
    print_table(meta)
    print(f"model {version} -> {args.out / version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
