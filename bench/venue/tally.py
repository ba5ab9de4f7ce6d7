"""Every request of a run, and what its answers say: counts per response class, and which classes are failures.

A response class is ``200``, ``<HTTP status> <Binance code>`` (``429 -1015``), a bare status for an answer without
a Binance body (nginx's ``502``), or one of the client's own outcomes (connection error, no answer, not sent).

The venue's documented refusals under load are not failures (docs/api.md, "Errors"): 429 with -1003 (request
weight) or -1015 (order count), and 503 with -1008 (the engine is behind: new orders refused, cancels pass). A
cancel answered -2011 (unknown order) is a failure unless the check afterwards finds the order filled or closed
in PostgreSQL (an order another trader filled first); everything else fails the run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.venue.flow import BAD, CANCEL, NEW
from bench.venue.loadgen import NOT_SENT, Result

ALLOWED = {
    "429 -1003": "request weight over the per-IP limit",
    "429 -1015": "order count over the per-account limit",
    "503 -1008": "backpressure: the engine is behind, new orders refused",
}
CANCEL_RACED = "400 -2011"
KIND_NAMES = {NEW: "new order", CANCEL: "cancel", BAD: "invalid order (test)"}

I64 = npt.NDArray[np.int64]


@dataclass
class Requests:
    """The requests of one or more load steps as numpy arrays (one row per request)."""

    classes: list[str]
    kind: npt.NDArray[np.int8]
    who: I64
    sched: I64
    sent: I64
    resp: I64
    status: npt.NDArray[np.int16]  # index into ``classes``
    order_id: I64
    deep: npt.NDArray[np.int8]
    index: I64  # the request's index in the run (its client order id)

    @classmethod
    def of(cls, results: list[Result]) -> Requests:
        classes: list[str] = []
        ids: dict[str, int] = {}
        parts: dict[str, list[npt.NDArray[np.generic]]] = {k: [] for k in
                                                           ("kind", "who", "sched", "sent", "resp", "status",
                                                            "order_id", "deep", "index")}  # fmt: skip
        for r in results:
            remap = np.array([ids.setdefault(c, len(ids)) for c in r.classes], dtype=np.int16)
            for c in r.classes:
                if c not in classes:
                    classes.append(c)
            kind = np.frombuffer(r.kind, dtype=np.int8)
            parts["kind"].append(kind)
            parts["who"].append(np.frombuffer(r.who, dtype=np.dtype("l")).astype(np.int64))
            for name, blob in (("sched", r.sched_ns), ("sent", r.sent_ns), ("resp", r.resp_ns),
                               ("order_id", r.order_id)):  # fmt: skip
                parts[name].append(np.frombuffer(blob, dtype=np.int64))
            parts["status"].append(remap[np.frombuffer(r.status, dtype=np.int16)])
            parts["deep"].append(np.frombuffer(r.deep, dtype=np.int8))
            parts["index"].append(np.arange(r.first_index, r.first_index + len(kind), dtype=np.int64))
        joined = {k: np.concatenate(v) if v else np.zeros(0, dtype=np.int64) for k, v in parts.items()}
        return cls(classes, **joined)  # type: ignore[arg-type]

    def ok(self) -> npt.NDArray[np.bool_]:
        return self.status == self.classes.index("200") if "200" in self.classes else np.zeros(len(self.kind), bool)

    def acked_orders(self) -> npt.NDArray[np.bool_]:
        """New orders answered 200 with their orderId."""
        ok: npt.NDArray[np.bool_] = self.ok() & (self.kind == NEW) & (self.order_id > 0)
        return ok

    def counts(self) -> Counter[tuple[str, str]]:
        """(request kind, response class) -> requests."""
        out: Counter[tuple[str, str]] = Counter()
        for k, s in zip(self.kind.tolist(), self.status.tolist(), strict=True):
            out[(KIND_NAMES.get(k, str(k)), self.classes[s])] += 1
        return out


def failures(counts: Counter[tuple[str, str]], raced_cancels_verified: bool = False) -> dict[tuple[str, str], int]:
    """The (kind, class) counts that fail the run: everything but 200, the documented refusals, requests the
    client never sent because the venue answered too slowly, and (once verified) cancels that raced a fill."""
    bad: dict[tuple[str, str], int] = {}
    for (kind, cls), n in counts.items():
        if cls == "200" or cls in ALLOWED or cls == NOT_SENT:
            continue
        if cls == CANCEL_RACED and kind == KIND_NAMES[CANCEL] and raced_cancels_verified:
            continue
        bad[(kind, cls)] = n
    return bad
