"""deploy/prometheus run for real: a Prometheus with a copy of the configuration (scraping every second) finds the
generated file_sd targets with their job and process labels, scrapes an exporter standing in for the sequencer,
evaluates the recording rules on it and holds MercuryTargetDown pending for the processes that are not running."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from deploy import procfile, targets
from tests.deploy.tools import tool

PROM = procfile.ROOT / "deploy" / "prometheus"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else base + path
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())


@pytest.fixture
def exporter() -> Iterator[int]:
    """An exporter on a free port serving the sequencer's engine-lag gauge at 20000."""
    registry = CollectorRegistry()
    Gauge("mercury_sequencer_engine_lag", "stand-in", registry=registry).set(20000)
    port = _free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield port
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def prometheus(tmp_path: Path, exporter: int) -> Iterator[str]:
    config = tmp_path / "prometheus"
    shutil.copytree(PROM, config)
    yml = config / "prometheus.yml"
    yml.write_text(
        yml.read_text().replace("interval: 5s", "interval: 1s").replace("scrape_timeout: 4s", "scrape_timeout: 1s")
    )
    groups = targets.groups(procfile.load(), "127.0.0.1")
    for group in groups:
        labels: Any = group["labels"]
        if labels["process"] == "sequencer":
            group["targets"] = [f"127.0.0.1:{exporter}"]
    (config / "targets" / "mercury.json").write_text(json.dumps(groups))
    port = _free_port()
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [tool("prometheus"), f"--config.file={yml}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(base + "/-/ready", timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
                assert time.monotonic() < deadline, "Prometheus did not become ready"
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _until(check: Any, seconds: float = 12) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_prometheus_scrapes_records_and_alerts(prometheus: str) -> None:
    exporting = {p.name: p.job for p in procfile.load() if p.job}

    def discovered() -> dict[str, tuple[str, str]]:
        active = _get(prometheus, "/api/v1/targets")["data"]["activeTargets"]
        return {t["labels"].get("process", ""): (t["labels"]["job"], t["health"]) for t in active}

    found = _until(lambda: (d := discovered()).get("sequencer", ("", ""))[1] == "up" and d)
    assert found, discovered()
    # the file group's job label replaces the scrape config's job name
    assert {name: job for name, (job, _) in found.items() if name} == exporting

    def recorded() -> list[Any]:
        result: list[Any] = _get(prometheus, "/api/v1/query", query="mercury:engine_lag:max")["data"]["result"]
        return result

    lag = _until(recorded)
    assert lag and float(lag[0]["value"][1]) == 20000

    def pending_down() -> set[str]:
        alerts = _get(prometheus, "/api/v1/alerts")["data"]["alerts"]
        return {a["labels"]["process"] for a in alerts if a["labels"]["alertname"] == "MercuryTargetDown"}

    down = _until(lambda: pending_down() == set(exporting) - {"sequencer"} and pending_down())
    assert down == set(exporting) - {"sequencer"}
