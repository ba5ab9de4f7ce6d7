"""deploy/prometheus: the configuration, the rules and their unit tests through promtool, the targets against the
Procfile; and broken copies that promtool must refuse, so the checks are shown to be able to fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deploy import procfile, targets
from tests.deploy.tools import run, tool

PROM = procfile.ROOT / "deploy" / "prometheus"


def test_config_is_valid() -> None:
    result = run(tool("promtool"), "check", "config", str(PROM / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout


def test_rules_are_valid() -> None:
    result = run(tool("promtool"), "check", "rules", *(str(p) for p in sorted((PROM / "rules").glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_in_the_unit_tests() -> None:
    result = run(tool("promtool"), "test", "rules", str(PROM / "tests" / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test_that_expects_it_firing() -> None:
    rules = (PROM / "rules" / "alerts.yml").read_text()
    tests = (PROM / "tests" / "alerts_test.yml").read_text()
    alerts = [line.split(":", 1)[1].strip() for line in rules.splitlines() if line.strip().startswith("- alert:")]
    assert len(alerts) >= 5
    for name in alerts:
        # a firing expectation is an alert_rule_test entry for the alert whose exp_alerts is not empty
        blocks = tests.split(f"alertname: {name}\n")[1:]
        assert any(not b.lstrip().startswith("exp_alerts: []") for b in blocks), f"{name} is never expected to fire"
        assert "for:" in rules.split(f"- alert: {name}\n", 1)[1].split("- alert:", 1)[0]


def _copy(tmp: Path) -> Path:
    shutil.copytree(PROM, tmp / "prometheus")
    return tmp / "prometheus"


def test_a_broken_rule_is_refused(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    alerts = copy / "rules" / "alerts.yml"
    alerts.write_text(alerts.read_text().replace("mercury:engine_lag:max > 10000", "mercury:engine_lag:max >> 10000"))
    result = run(tool("promtool"), "check", "rules", str(alerts))
    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr


def test_a_broken_config_is_refused(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    config = copy / "prometheus.yml"
    config.write_text(config.read_text().replace("file_sd_configs:", "file_sd_config:"))
    assert run(tool("promtool"), "check", "config", str(config)).returncode != 0


def test_an_alert_that_cannot_fire_fails_its_unit_test(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    alerts = copy / "rules" / "alerts.yml"
    alerts.write_text(
        alerts.read_text().replace("mercury:persister_lag_seconds:max > 30", "mercury:persister_lag_seconds:max > 3000")
    )
    result = run(tool("promtool"), "test", "rules", str(copy / "tests" / "alerts_test.yml"))
    assert result.returncode != 0
    assert "MercuryPersisterLagging" in result.stdout + result.stderr


def test_targets_are_current_and_cover_the_procfile() -> None:
    assert targets.main(["--check"]) == 0, "run python -m deploy.targets"
    exporting = [p for p in procfile.load() if "MERCURY_METRICS_PORT" in p.env]
    assert len(exporting) >= 9
    for path, host in ((targets.LOCAL, "127.0.0.1"), (targets.COMPOSE, None)):
        groups = json.loads(path.read_text())
        by_process = {g["labels"]["process"]: g for g in groups}
        assert set(by_process) == {p.name for p in exporting}
        for p in exporting:
            assert by_process[p.name]["targets"] == [f"{host or p.name}:{p.env['MERCURY_METRICS_PORT']}"]
    jobs = {g["labels"]["process"]: g["labels"]["job"] for g in json.loads(targets.LOCAL.read_text())}
    # processes of one kind share a job: a scaled-out gateway or feed lands in the same series
    assert jobs["http-a"] == jobs["http-b"] == "http"
    assert jobs["feed-a"] == jobs["feed-b"] == "feed"


def test_a_stale_targets_file_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "mercury.json"
    stale.write_text(targets.LOCAL.read_text().replace("9111", "9911"))
    monkeypatch.setattr(targets, "LOCAL", stale)
    assert targets.main(["--check"]) == 1
