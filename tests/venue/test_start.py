"""The whole venue as a new user starts it: ``./mercury start`` (honcho and the Procfile: Redis, PostgreSQL,
FerretDB, the front door, sequencer, engine, persisters, two gateways, two feeds, the FIX gateway, the simulator and
the welcome banner), then Ctrl-C, then a second start that resumes.

The start runs in a copy of the repository (its own ``var/``: the developer's venue data is not touched) inside a
network namespace of its own (``unshare --net``), so its fixed ports never meet a venue already running on this
machine. The checks (tests/venue/probe.py) run in that namespace too and go through the front door, as a user's
browser or bot would: the UI page and its scripts, REST, a WebSocket stream, and the databases behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import read_log, wait_for
from tests.venue.probe import metrics_ports

REPO = Path(__file__).resolve().parents[2]
BANNER = "Mercury is up."
START_TIMEOUT = 240.0  # s: the first start creates the PostgreSQL cluster and the demo account


def _copy_repository(to: Path) -> None:
    """The tracked sources (and new files not yet committed) with what the build made from them: the compiled engine
    modules, the UI's production build and the FerretDB binary. Times are kept, so ./mercury sees them as built."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           check=True, capture_output=True).stdout.decode().split("\0")  # fmt: skip
    built = [p.relative_to(REPO) for p in (*REPO.glob("engine/*.so"), *REPO.glob("*__mypyc*.so"))]
    for name in [f for f in files if f] + [str(p) for p in built]:
        source = REPO / name
        if source.is_file():
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)
    for tree in ("ui/dist", "var/bin"):
        if (REPO / tree).is_dir():
            shutil.copytree(REPO / tree, to / tree, symlinks=True)


class Start:
    """One ``./mercury start`` in its own network namespace; ``stop`` is the user's Ctrl-C."""

    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        self.log_path = log
        self.offset = log.stat().st_size if log.exists() else 0
        self.stopping = 0  # where the log stood at Ctrl-C
        env = {k: v for k, v in os.environ.items() if not k.startswith("MERCURY_")}
        env["PYTHONUNBUFFERED"] = "1"
        with open(log, "ab") as out:
            # a new session: Ctrl-C reaches the whole process group as a terminal's would
            self.proc = subprocess.Popen(
                ["unshare", "--net", "--fork", "--kill-child", "--", "bash", "-c",
                 "ip link set lo up && exec ./mercury start"],
                cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def log(self) -> str:
        return read_log(self.log_path, self.offset)

    def shutdown_log(self) -> str:
        return read_log(self.log_path, self.stopping)

    def wait_banner(self) -> dict[str, str]:
        wait_for(lambda: BANNER in self.log() or self.proc.poll() is not None, START_TIMEOUT, "the venue's banner")
        assert self.proc.poll() is None, f"./mercury start ended:\n{self.log()[-6000:]}"
        wait_for(lambda: "secret" in self.log().split(BANNER, 1)[1], 10, "the demo key in the banner")
        text = self.log().split(BANNER, 1)[1]
        fields = {}
        for name in ("API key", "secret"):
            line = next(line for line in text.splitlines() if line.split("|", 1)[-1].strip().startswith(name))
            fields[name] = line.split(name, 1)[1].strip()
        return {"key": fields["API key"], "secret": fields["secret"]}

    def probe(self, *args: str) -> dict[str, Any]:
        """tests/venue/probe.py inside this start's network namespace (it imports this repository's code)."""
        command = ["nsenter", "-t", str(self.proc.pid), "-n", "--", sys.executable, "-m", "tests.venue.probe", *args]
        done = subprocess.run(command, cwd=REPO, capture_output=True, timeout=120, check=False)
        venue = self.log()[-4000:]
        assert done.returncode == 0, f"probe failed:\n{done.stderr.decode()[-4000:]}\n--- venue ---\n{venue}"
        return dict(json.loads(done.stdout))

    def stop(self) -> int:
        self.stopping = self.log_path.stat().st_size
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            raise AssertionError(f"Ctrl-C did not stop the venue within 60 s:\n{self.log()[-6000:]}") from None


@pytest.fixture(scope="module")
def repository() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="mercury-start-"))
    directory.chmod(0o755)  # PostgreSQL runs as its own user under var/ when we are root
    root = directory / "mercury"
    root.mkdir()
    _copy_repository(root)
    yield root
    shutil.rmtree(directory, ignore_errors=True)


def _settled(start: Start, key: dict[str, str], seen: dict[str, Any], what: str, **want: int) -> dict[str, Any]:
    """Probe again until the databases caught up with the flow (the persisters follow the events stream)."""
    deadline = time.monotonic() + 60
    while any(seen["postgres" if k in ("trades", "orders") else "mongo"][k] < v for k, v in want.items()):
        assert time.monotonic() < deadline, f"{what}: {seen['postgres']} {seen['mongo']} short of {want}"
        time.sleep(2)
        seen = start.probe("--key", key["key"], "--secret", key["secret"])
    return seen


def _scraped(start: Start, key: dict[str, str], seen: dict[str, Any]) -> dict[str, Any]:
    """Probe again until the local Prometheus (through the front door's /prometheus/) scrapes every process the
    Procfile gives a metrics port, and sees each up: file-based discovery found them all."""
    want = set(metrics_ports())
    deadline = time.monotonic() + 60
    while {p for p, up in seen["prometheus"]["up"].items() if up == 1} < want:
        assert time.monotonic() < deadline, f"Prometheus does not see every process up: {seen['prometheus']}"
        time.sleep(2)
        seen = start.probe("--key", key["key"], "--secret", key["secret"])
    return seen


def _total(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of a series' samples (any labels, or those matching ``labels``)."""
    want = [f"{k}={v}" for k, v in labels.items()]
    return sum(v for k, v in samples.items() if k.split("{", 1)[0] == name and all(w in k for w in want))


def _metrics_moved(metrics: dict[str, dict[str, float]]) -> None:
    """Every process the Procfile gives a metrics port answers /metrics with its own series, and after the
    simulator's flow they have moved: commands journaled, events and trades published, events persisted, HTTP
    requests answered, market data sent, FIX messages exchanged."""
    assert set(metrics) == {"sequencer", "engine", "pg-persister", "mongo-persister", "http-a", "http-b",
                            "feed-a", "feed-b", "fix", "research"}, sorted(metrics)  # fmt: skip
    for process, samples in metrics.items():
        assert _total(samples, "process_cpu_seconds_total") > 0, process
    seq, engine = metrics["sequencer"], metrics["engine"]
    assert _total(seq, "mercury_sequencer_commands_total", status="JOURNALED") > 0, seq
    assert _total(seq, "mercury_stream_entries", stream="journal") > 0, seq
    assert _total(seq, "mercury_stream_entries", stream="events") > 0, seq
    assert "mercury_sequencer_engine_lag{}" in seq
    assert _total(engine, "mercury_engine_commands_total") > 0
    assert _total(engine, "mercury_engine_events_total", type="TradeExecuted") > 0, engine
    assert _total(engine, "mercury_engine_trades_total", symbol="BTCUSDT") > 0, engine
    assert _total(engine, "mercury_engine_publish_lag_seconds_count") > 0, engine
    for persister in ("pg-persister", "mongo-persister"):
        assert _total(metrics[persister], "mercury_persister_events_total") > 0, metrics[persister]
    gateways = [metrics["http-a"], metrics["http-b"]]
    assert sum(_total(g, "mercury_http_requests_total", status="200") for g in gateways) > 0, gateways
    assert sum(_total(g, "mercury_gateway_ack_seconds_count") for g in gateways) > 0, gateways
    feeds = [metrics["feed-a"], metrics["feed-b"]]
    assert all("mercury_feed_clients{}" in f for f in feeds), feeds
    assert sum(_total(f, "mercury_feed_messages_sent_total") for f in feeds) > 0, feeds
    assert _total(metrics["fix"], "mercury_fix_messages_total", direction="in") > 0, metrics["fix"]


def _stopped_cleanly(start: Start, code: int) -> None:
    """Ctrl-C: every process stopped on its own within honcho's grace period (none killed), none with a traceback;
    honcho then exits 130 (128 + SIGINT, the shell's convention for an interrupted command)."""
    shutdown = start.shutdown_log()
    assert code in (0, 130), f"Ctrl-C: ./mercury start exited {code}:\n{shutdown[:8000]}"
    assert "SIGKILL" not in shutdown, f"a process did not stop on Ctrl-C:\n{shutdown[:8000]}"
    text = start.log()
    at = text.find("Traceback")
    assert at < 0, text[max(0, at - 3000) : at + 5000]  # the traceback itself and what led to it


@pytest.mark.timeout(900)
def test_the_start_command_runs_the_whole_venue_and_a_second_start_resumes(repository: Path) -> None:
    log = repository.parent / "start.log"
    first = Start(repository, log)
    try:
        key = first.wait_banner()
        seen = first.probe("--key", key["key"], "--secret", key["secret"], "--place")
        # the UI, from the front door: its page, every script it loads, and its market-data URLs on the same origin
        assert seen["ui"]["status"] == 200 and seen["ui"]["type"].startswith("text/html"), seen["ui"]
        assert seen["ui"]["scripts"] and set(seen["ui"]["scripts"]) == {200}, seen["ui"]
        assert seen["ui"]["config"] == {"marketRest": "http://127.0.0.1:8080", "marketWs": "ws://127.0.0.1:8080",
                                        "prometheus": "http://127.0.0.1:8080/prometheus",
                                        "research": "http://127.0.0.1:8080/research"}  # fmt: skip
        # REST (trading on a gateway, market data on a feed) and a WebSocket stream carrying the simulator's trades
        assert seen["ping"] == 200 and {"BTCUSDT", "ETHUSDT"} <= set(seen["symbols"])
        assert seen["depth_status"] == 200 and "cs" in seen["depth"], seen["depth"]
        assert seen["account_status"] == 200 and float(seen["balances"]["USDT"]["free"]) > 0, seen["balances"]
        assert seen["trade"] is not None, "no trade on the stream in 30 s: is the simulator trading?"
        assert seen["trade"]["s"] == "BTCUSDT" and float(seen["trade"]["p"]) > 0
        assert seen["placed_status"] == 200 and seen["placed"]["status"] == "NEW", seen["placed"]
        placed = seen["placed"]
        _metrics_moved(seen["metrics"])
        seen = _scraped(first, key, seen)
        # the trades reach PostgreSQL and the klines the MongoDB-protocol server
        seen = _settled(first, key, seen, "first start", trades=1, klines=1)
        assert seen["postgres"]["duplicate_trade_out_seq"] == 0
        before = seen
    finally:
        code = first.stop()
    _stopped_cleanly(first, code)

    second = Start(repository, log)
    try:
        assert second.wait_banner() == key, "a second start shows the same demo account and key"
        seen = second.probe("--key", key["key"], "--secret", key["secret"], "--order", str(placed["orderId"]))
        # nothing lost: the order resting before the stop is still open, the stored history is all there and grows
        assert seen["order_status"] == 200 and seen["order"]["status"] == "NEW", seen["order"]
        assert (seen["order"]["price"], seen["order"]["origQty"]) == (placed["price"], placed["origQty"])
        assert seen["trade"] is not None, "no trade on the stream after the restart"
        seen = _settled(second, key, seen, "second start", trades=before["postgres"]["trades"] + 1,
                        klines=before["mongo"]["klines"] + 1)  # fmt: skip
        assert seen["postgres"]["duplicate_trade_out_seq"] == 0
        assert seen["postgres"]["accounts"] == before["postgres"]["accounts"], "no account created twice"
    finally:
        code = second.stop()
    _stopped_cleanly(second, code)
