"""The whole-venue benchmark (python -m bench): its report has every hop with finite percentiles, and the load test
accounts for every answer (an unexpected class fails the run) and finds every acknowledged order."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import load
from bench.venue.flow import BAD, NEW
from bench.venue.hops import HOPS, hop, passed
from bench.venue.http import Connection, error_code, order_id
from bench.venue.observe import SeqColumn, Timeline
from bench.venue.tally import failures
from tests.harness import ROOT


def test_only_200_and_the_documented_refusals_pass() -> None:
    counts = Counter({("new order", "200"): 90, ("new order", "429 -1015"): 3, ("new order", "503 -1008"): 2,
                      ("cancel", "429 -1003"): 1})  # fmt: skip
    assert failures(counts) == {}
    counts[("new order", "400 -1013")] = 1
    counts[("cancel", "502")] = 2
    counts[("new order", "connection error")] = 1
    assert failures(counts) == {("new order", "400 -1013"): 1, ("cancel", "502"): 2,
                                ("new order", "connection error"): 1}  # fmt: skip


def test_a_cancel_refused_as_unknown_passes_only_once_verified() -> None:
    counts = Counter({("cancel", "400 -2011"): 1})
    assert failures(counts) == {("cancel", "400 -2011"): 1}
    assert failures(counts, raced_cancels_verified=True) == {}
    assert failures(Counter({("new order", "400 -2011"): 1}), raced_cancels_verified=True) != {}


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True


def test_the_http_client_reads_length_and_chunked_answers_split_anywhere() -> None:
    answers: list[tuple[int, int, bytes]] = []
    idle: list[Connection] = []
    conn = Connection(lambda i, status, body, _ns: answers.append((i, status, body)), idle.append, lambda c: None)
    transport: Any = _Transport()
    conn.connection_made(transport)
    conn.send(7, b"POST / HTTP/1.1\r\n\r\n")
    body = b'{"symbol":"BTCUSDT","orderId":1234,"orderListId":-1}'
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    for k in range(0, len(raw), 7):
        conn.data_received(raw[k : k + 7])
    assert answers == [(7, 200, body)] and idle == [conn]
    conn.send(8, b"DELETE / HTTP/1.1\r\n\r\n")
    conn.data_received(b'HTTP/1.1 429 Too Many\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n'
                       b'19\r\n{"code":-1015,"msg":"too \r\n5\r\nmany"\r\n1\r\n}\r\n0\r\n\r\n')  # fmt: skip
    assert answers[1] == (8, 429, b'{"code":-1015,"msg":"too many"}')
    assert transport.closed and idle == [conn]  # closed by the server: not handed out again
    assert order_id(body) == 1234 and error_code(answers[1][2]) == -1015 and order_id(b"{}") is None


def test_a_connection_lost_under_a_request_answers_it_as_a_connection_error() -> None:
    answers: list[tuple[int, int]] = []
    conn = Connection(lambda i, status, _b, _ns: answers.append((i, status)), lambda c: None, lambda c: None)
    conn.connection_made(_Transport())  # type: ignore[arg-type]
    conn.send(3, b"x")
    conn.connection_lost(None)
    assert answers == [(3, 0)]


def test_persisted_is_when_the_offset_first_reached_the_event() -> None:
    t = Timeline()
    for at, offset in ((100, 5), (200, 5), (300, 9), (400, 20)):
        t.note(at, offset)
    assert list(t.at) == [100, 300, 400]
    assert passed(t, np.array([1, 5, 6, 9, 20, 21], dtype=np.int64)).tolist() == [100, 100, 300, 300, 400, 0]


def test_a_hop_counts_samples_below_zero_at_the_lowest_value() -> None:
    h = hop("x", np.array([-5_000, 1_000_000, 2_000_000, 3_000_000], dtype=np.int64))
    assert h.count == 4 and h.negatives == 1
    assert 0.99 < h.ms(50) < 1.01 and 2.99 < h.max_ms() < 3.01
    col = SeqColumn(10)
    col.set(12, 7)
    col.set(200_000, 9)
    assert (col.get(12), col.get(11), col.get(9), col.get(200_000)) == (7, 0, 0, 9)
    assert isinstance(col.values, array)


@pytest.mark.timeout(90)
def test_python_m_bench_latency_quick_reports_every_hop_with_finite_percentiles(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "latency", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=85, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    report = (tmp_path / "venue-latency.md").read_text()
    table = report.split("## Latency per hop", 1)[1].split("##", 1)[0]
    rows = {cells[1]: cells for line in table.splitlines()
            if (cells := [c.strip() for c in line.split("|")]) and len(cells) > 7 and cells[1] != "hop"}  # fmt: skip
    wanted = list(HOPS) + [f"{h} → WS client ({c})" for h in ("sequencer", "engine") for c in ("feed-a", "feed-b")]
    for name in wanted:
        assert name in rows, f"{name} missing from the report:\n{table}"
        count = int(re.sub(r"\D.*", "", rows[name][3].replace(",", "")))
        assert count > 0, rows[name]
        for cell in rows[name][4:7]:  # p50, p99, p99.9
            assert math.isfinite(float(cell.replace(",", ""))), rows[name]
    for figure in ("venue-latency.png", "venue-throughput.png", "venue-backlog.png", "venue-cpu.png"):
        assert (tmp_path / figure).stat().st_size > 10_000


@pytest.mark.timeout(90)
def test_the_load_fails_on_an_unexpected_answer_and_finds_every_acknowledged_order(tmp_path: Path) -> None:
    args = load.parse_args(["--private", "--rate", "200", "--seconds", "3", "--bad-every", "25",
                            "--report", str(tmp_path / "load.md")])  # fmt: skip
    run = load.execute(args)
    counts = run.requests.counts()
    v = run.verdict
    # a cancel may race a fill by the simulator (-2011): allowed only once PostgreSQL shows each such order closed
    assert v.raced_cancels == counts[("cancel", "400 -2011")], (v.lines(), counts)
    assert v.raced_cancels_closed == v.raced_cancels, v.lines()
    assert failures(counts).keys() <= {("invalid order (test)", "400 -1013"), ("cancel", "400 -2011")}, counts
    bad = failures(counts, raced_cancels_verified=True)
    assert set(bad) == {("invalid order (test)", "400 -1013")}, counts  # the injected orders, and nothing else
    assert bad[("invalid order (test)", "400 -1013")] == int((run.requests.kind == BAD).sum()) == 24
    assert v.acked == int(((run.requests.kind == NEW) & run.requests.ok()).sum()) > 300
    assert v.ok and v.persister_caught_up, v.lines()
    assert v.in_journal == v.in_postgres == v.acked
    assert load.exit_code(run) == 1  # loud: the injected class fails the run
