"""The UI's Ops page end to end: its production build in Debian's headless Chromium (ui/e2e/ops.mjs) charting from a
real Prometheus (Debian's /usr/bin/prometheus, on a free port, scraping every second) that scrapes a real venue's
sequencer, engine and HTTP gateway while an order flow runs. The script waits for the enqueued-vs-processed chart
to have non-zero points, checks the other charts, the unreachable and not-configured messages, and fails on any
unexpected console error. Its screenshot goes to the test's directory, or to docs/screenshots/ops.png with
MERCURY_UI_SCREENSHOTS=1."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import tests.gateways.conftest as gateways
from tests.gateways.conftest import running_exchange
from tests.harness import PostgresServer, Service, Venue, free_port, wait_for
from tests.persistence.test_postgres_persister import persister
from tests.ui.conftest import FLOW_ACCOUNTS, SCREENSHOTS, UI, Flow, build_ui, chromium

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = Path("/usr/bin/prometheus")
RULES = REPO / "deploy" / "prometheus" / "rules" / "recording.yml"


class MetricsVenue(Venue):
    """A venue whose sequencer and engine export metrics, each on its own port as the Procfile gives them (one
    MERCURY_METRICS_PORT in the shared environment would make the two processes fight over one port)."""

    def __init__(self, directory: Path, fsync: str = "everysec", **settings: str) -> None:
        super().__init__(directory, fsync, **settings)
        self.metrics_ports = {"sequencer": free_port(), "engine": free_port()}
        self.sequencer.env = dict(self.env, MERCURY_METRICS_PORT=str(self.metrics_ports["sequencer"]))
        self.engine.env = dict(self.env, MERCURY_METRICS_PORT=str(self.metrics_ports["engine"]))


class Prometheus:
    """Debian's Prometheus on a free port with a temporary configuration: the given targets scraped every second
    and the repository's recording rules loaded, its TSDB in the test directory."""

    def __init__(self, directory: Path, targets: dict[str, int]) -> None:
        self.dir = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        directory.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": {"process": job}}]}
                for job, port in targets.items()
            ],
        }
        # JSON is YAML: no YAML writer needed
        (directory / "prometheus.yml").write_text(json.dumps(config, indent=2))
        self.log_path = directory / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(PROMETHEUS), f"--config.file={self.dir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.dir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for(self.ready, 30, "Prometheus to be ready")

    def ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited:\n{self.log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def targets_up(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=2) as r:
            active = json.load(r)["data"]["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


@dataclass
class OpsExchange:
    url: str  # the gateway, which serves the UI
    prometheus: str


class Pinger(threading.Thread):
    """A few plain HTTP requests a second to the gateway, so that its request-duration histogram has samples."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(0.2):
            try:
                urllib.request.urlopen(f"{self.url}/api/v3/time", timeout=2).read()
            except OSError:
                pass  # the chart shows what arrives; the test checks the commands chart, not this


@pytest.fixture
def ops_exchange(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OpsExchange]:
    assert PROMETHEUS.exists(), "Debian's prometheus is not installed: apt-get install prometheus"
    gateway_metrics, persister_metrics = free_port(), free_port()
    # running_exchange builds its Venue and PostgreSQL persister by these module-level names: it gets ones that
    # export metrics
    monkeypatch.setattr(gateways, "Venue", MetricsVenue)

    def exporting_persister(venue: Venue, pg_url: str) -> Service:
        return persister(venue, pg_url, persister_metrics)

    monkeypatch.setattr(gateways, "persister", exporting_persister)
    with running_exchange(tmp_path, postgres_server, gateway_env={"MERCURY_METRICS_PORT": str(gateway_metrics)}) as ex:
        venue = ex.venue
        assert isinstance(venue, MetricsVenue)
        venue.fund(*FLOW_ACCOUNTS)
        targets = {**venue.metrics_ports, "pg-persister": persister_metrics, "http": gateway_metrics}
        prometheus = Prometheus(tmp_path / "prometheus", targets)
        prometheus.start()
        flow = Flow(venue)
        pinger = Pinger(ex.url)
        try:
            flow.start()
            pinger.start()
            wait_for(prometheus.targets_up, 20, "Prometheus to scrape every target")
            yield OpsExchange(ex.url, prometheus.url)
        finally:
            flow.stop_event.set()
            pinger.stop_event.set()
            flow.join(5)
            pinger.join(5)
            prometheus.stop()
        assert flow.error is None, f"the order flow failed: {flow.error!r}"


@pytest.mark.timeout(400)
def test_ops_page(ops_exchange: OpsExchange, tmp_path: Path) -> None:
    build_ui()
    docs = bool(os.environ.get("MERCURY_UI_SCREENSHOTS"))
    env = dict(os.environ, UI_URL=ops_exchange.url, PROMETHEUS_URL=ops_exchange.prometheus, CHROMIUM=chromium(),
               UNREACHABLE_URL=f"http://127.0.0.1:{free_port()}", SCREENSHOTS=str(SCREENSHOTS if docs else tmp_path),
               FAILURE_SCREENSHOT=str(tmp_path / "ops-failure.png"))  # fmt: skip
    if docs:
        # the README's picture shows a few minutes of lines rather than the first seconds; a plain run does not wait
        env["OPS_SETTLE_MS"] = "180000"
    # the script's own failure is reported below with its output, hence check=False
    proc = subprocess.run(["node", "e2e/ops.mjs"], cwd=UI, env=env, capture_output=True, text=True, timeout=330,
                          check=False)  # fmt: skip
    output = proc.stdout + proc.stderr
    print(output)
    assert proc.returncode == 0, f"the browser test failed (screen: {tmp_path / 'ops-failure.png'}):\n{output}"
    assert "PASS: no console errors" in output, output
