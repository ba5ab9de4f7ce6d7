"""Latency per hop of an order's way through the venue, from the times carried with it and the observation points.

For each acknowledged new order (its orderId is its in_seq) the load process knows when it was due, written and
answered; the tap knows the sequencer's stamp, when it was journaled, when the engine published its first event
and the out_seq of its last; the watchers know when each persister's offset passed that out_seq and when each
trade reached a WebSocket client. All are CLOCK_REALTIME ns on one machine, so differences across processes are
meaningful (to the clock's read cost and the readers' scheduling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

from bench.venue.observe import SeqColumn, TapData, Timeline, Watchers
from bench.venue.tally import Requests

LOWEST, HIGHEST = 1, 120_000_000  # µs a histogram covers
I64 = npt.NDArray[np.int64]

# name -> what it spans, in the order an order travels. The sequencer's stamp (``ts``, written into the journal by
# the sequencer itself) and the client's own reads are exact ends; "journaled", "engine" and the persisters' times
# are when an observer saw them, so hops from or to those carry the observer's scheduling delay too.
HOPS = {
    "client → sequencer": "request written by the client → the sequencer's stamp (front door, gateway: parse, key, "
    "signature, limits; ZMQ to the sequencer)",
    "sequencer → ACK at client": "stamp → the client reads the ACK answer (journal write, ack to the gateway, HTTP "
    "answer through nginx)",
    "sequencer → journaled": "stamp → batch seen on the journal PUB (batching, Redis XADD with AOF)",
    "journaled → engine": "→ the command's first event seen on the engine's PUB (engine SUB, match, events XADD)",
    "sequencer → WS client (front door)": "the trade's command stamp → a client of the front door reads the trade on "
    "<sym>@trade (the whole way from the journal through the engine and a feed)",
    "engine → WS client (front door)": "trade seen on the engine's PUB → a client of the front door reads it",
    "engine → PostgreSQL": "last event seen published → consumer_offsets covers it (its rows are committed; 5 ms poll)",
    "engine → MongoDB": "last event seen published → the MongoDB persister confirmed it (Redis registry; 5 ms poll)",
    "client round trip (ACK)": "request written → answer read (new orders, ACK)",
    "client queue": "request due → written (time waiting in the load process for a connection)",
}


@dataclass
class Hop:
    name: str
    histogram: HdrHistogram
    negatives: int  # samples below zero (clock read order across threads), counted as the lowest value

    @property
    def count(self) -> int:
        return int(self.histogram.get_total_count())

    def ms(self, percentile: float) -> float:
        if not self.count:
            return float("nan")
        return float(self.histogram.get_value_at_percentile(percentile)) / 1000.0

    def max_ms(self) -> float:
        return float(self.histogram.get_max_value()) / 1000.0 if self.count else float("nan")


def hop(name: str, ns: I64) -> Hop:
    h = HdrHistogram(LOWEST, HIGHEST, 3)
    us = ns // 1000
    negatives = int((us < 0).sum())
    for value, n in zip(*np.unique(np.clip(us, LOWEST, HIGHEST), return_counts=True), strict=True):
        h.record_value(int(value), int(n))
    return Hop(name, h, negatives)


def _column(col: SeqColumn, seqs: I64) -> I64:
    values = np.frombuffer(col.values, dtype=np.int64) if len(col.values) else np.zeros(0, np.int64)
    i = seqs - col.base
    ok = (i >= 0) & (i < len(values))
    out = np.zeros(len(seqs), dtype=np.int64)
    out[ok] = values[i[ok]]
    return out


def passed(timeline: Timeline, out_seqs: I64) -> I64:
    """When ``timeline`` first reached each out_seq (0: not within the run)."""
    if not len(timeline.value):
        return np.zeros(len(out_seqs), dtype=np.int64)
    values = np.maximum.accumulate(np.frombuffer(timeline.value, dtype=np.int64))
    at = np.frombuffer(timeline.at, dtype=np.int64)
    k = np.searchsorted(values, out_seqs, side="left")
    out = np.zeros(len(out_seqs), dtype=np.int64)
    ok = k < len(values)
    out[ok] = at[k[ok]]
    return out


def _both(a: I64, b: I64) -> I64:
    """b - a where both were seen."""
    ok = (a > 0) & (b > 0)
    return b[ok] - a[ok]


def trade_latencies(tap: TapData, arrivals: dict[str, object], first_seq: int,
                    last_seq: int) -> dict[str, tuple[I64, I64]]:  # fmt: skip
    """Per WebSocket client, for trades caused by commands in [first_seq, last_seq]: (command stamp -> read,
    engine publish seen -> read)."""
    out: dict[str, tuple[I64, I64]] = {}
    stamps = tap.stamp
    for name, pairs in arrivals.items():
        flat = np.frombuffer(pairs, dtype=np.int64)  # type: ignore[call-overload]
        got: dict[int, int] = {}
        for tid, t in zip(flat[0::2].tolist(), flat[1::2].tolist(), strict=True):
            got.setdefault(tid, t)  # a reconnecting client may see a trade twice: the first read counts
        mine = [(tid, t) for tid, t in got.items() if tid in tap.trades and first_seq <= tap.trade_seq[tid] <= last_seq]
        from_stamp = [t - stamps.get(tap.trade_seq[tid]) for tid, t in mine if stamps.get(tap.trade_seq[tid])]
        from_engine = [t - tap.trades[tid] for tid, t in mine]
        out[name] = np.array(from_stamp, dtype=np.int64), np.array(from_engine, dtype=np.int64)
    return out


def hops_of(req: Requests, rows: npt.NDArray[np.bool_], tap: TapData, watchers: Watchers) -> dict[str, Hop]:
    """Every hop over the acknowledged new orders selected by ``rows``."""
    acked = rows & req.acked_orders()
    seqs = req.order_id[acked]
    sent, resp, sched = req.sent[acked], req.resp[acked], req.sched[acked]
    stamp = _column(tap.stamp, seqs)
    journaled = _column(tap.journaled, seqs)
    published = _column(tap.published, seqs)
    last_out = _column(tap.last_out, seqs)
    series: dict[str, I64] = {
        "client → sequencer": _both(sent, stamp),
        "sequencer → ACK at client": _both(stamp, resp),
        "sequencer → journaled": _both(stamp, journaled),
        "journaled → engine": _both(journaled, published),
    }
    if len(seqs):
        trades = trade_latencies(tap, dict(watchers.arrivals), int(seqs.min()), int(seqs.max()))
        for name, (from_stamp, from_engine) in trades.items():
            series[f"sequencer → WS client ({name})"] = from_stamp
            series[f"engine → WS client ({name})"] = from_engine
    has_out = last_out > 0
    series["engine → PostgreSQL"] = _both(published[has_out], passed(watchers.pg, last_out[has_out]))
    series["engine → MongoDB"] = _both(published[has_out], passed(watchers.mongo, last_out[has_out]))
    series["client round trip (ACK)"] = _both(sent, resp)
    series["client queue"] = sent - sched
    ordered = sorted(series, key=_order)
    return {name: hop(name, series[name]) for name in ordered}


def _order(name: str) -> int:
    """Hops in HOPS's order; per-client variants after their front-door one."""
    keys = list(HOPS)
    base = name if name in HOPS else name.split("(", maxsplit=1)[0] + "(front door)"
    return keys.index(base) * 10 + (0 if name in HOPS else 1) if base in HOPS else 999
