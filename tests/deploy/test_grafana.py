"""deploy/grafana: the committed dashboard is what the code generates, it is a well-formed dashboard model, and
every query parses and reads only series that exist (metrics the code defines or recording rules)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deploy.grafana.dashboard import JSON_PATH, K8S_JSON_PATH, render
from deploy.procfile import ROOT
from tests.deploy.promql import defined_series, parse_errors, recorded_series, series_in
from tests.deploy.tools import load_yaml

RULES = ROOT / "deploy" / "prometheus" / "rules"


def _exprs(model: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in model["panels"] for t in p["targets"]]


def test_committed_json_is_current() -> None:
    assert JSON_PATH.read_text() == render(), "run python -m deploy.grafana"
    assert K8S_JSON_PATH.read_text() == render(), "run python -m deploy.grafana (the Kubernetes copy)"


def test_dashboard_model_is_well_formed() -> None:
    model = json.loads(JSON_PATH.read_text())
    assert model["uid"] == "mercury" and model["title"]
    panels = model["panels"]
    assert len(panels) >= 8
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids) and all(isinstance(i, int) for i in ids)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24 and pos["h"] > 0, p["title"]
        # no two panels overlap on the grid
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not mine & cells, p["title"]
        cells |= mine
        assert p["targets"], p["title"]
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"])
        assert p["datasource"]["uid"] == "prometheus"
    provisioned = (ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    assert "uid: prometheus" in provisioned


def test_the_asked_for_panels_are_there() -> None:
    exprs = " ".join(_exprs(json.loads(JSON_PATH.read_text())))
    for series in (
        "mercury:sequencer_journaled:rate1m",
        "mercury:engine_commands:rate1m",
        "mercury:engine_lag:max",
        "mercury:persister_lag_seconds:max",
        "mercury:http_request_duration_seconds:p50",
        "mercury:http_request_duration_seconds:p99",
        "mercury:http_requests:rate1m",
        "mercury_feed_clients",
        "mercury:feed_slow_clients_dropped:rate5m",
        "mercury_fix_sessions",
    ):
        assert series in exprs, series


def test_every_query_reads_existing_series() -> None:
    known = defined_series() | recorded_series()
    assert "mercury_feed_slow_clients_dropped_total" in known  # a counter's exported name, not its Python one
    for expr in _exprs(json.loads(JSON_PATH.read_text())):
        unknown = series_in(expr) - known
        assert not unknown, f"{expr}: no metric {unknown} in the code or the recording rules"


def test_the_rules_read_existing_series() -> None:
    known = defined_series() | recorded_series()
    rules = [r for f in sorted(RULES.glob("*.yml")) for group in load_yaml(f)["groups"] for r in group["rules"]]
    assert len(rules) >= 20
    for rule in rules:
        assert not series_in(rule["expr"]) - known, rule["expr"]


def test_every_query_parses(tmp_path: Path) -> None:
    assert parse_errors(_exprs(json.loads(JSON_PATH.read_text())), tmp_path) == ""


def test_the_checks_catch_a_broken_query(tmp_path: Path) -> None:
    assert "parse error" in parse_errors(["sum(rate(mercury_engine_commands_total[1m])"], tmp_path)
    assert series_in('sum by (status) (rate(mercury_http_requestz_total{status=~"5.."}[5m])) / on() up') == {
        "mercury_http_requestz_total",
        "up",
    }
    assert "mercury_http_requestz_total" not in defined_series()
