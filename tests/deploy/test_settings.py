"""Every MERCURY_* variable the deployment files set is one the code reads, with a value it parses: a misspelt
setting would otherwise be ignored in silence and the process would run on its default (127.0.0.1, say)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from deploy.procfile import ROOT
from tests.deploy.test_compose import compose
from tests.deploy.test_k8s import OVERLAYS, built, containers, objects
from wire.config import Settings, load_settings
from wire.errors import ConfigError

SOURCES = ("wire", "engine", "sequencer", "client", "persistence", "gateways", "feeds", "frontdoor", "sim")


def known() -> set[str]:
    names = {"MERCURY_" + field.upper() for field in Settings.__dataclass_fields__}
    for package in SOURCES:  # the few read outside Settings (the key-encryption key, ...)
        for path in (ROOT / package).rglob("*.py"):
            names |= set(re.findall(r"MERCURY_[A-Z0-9_]+", path.read_text()))
    return names


def problems(env: dict[str, Any], where: str) -> list[str]:
    # ${VAR:-default} and ${VAR:?message} are the shell's; a value is checked as its default would be
    values = {k: re.sub(r"\$\{\w+:[-?][^}]*\}", "x", str(v)) for k, v in env.items() if k.startswith("MERCURY_")}
    found = [f"{where}: {k} is read by nothing" for k in values if k not in known()]
    try:
        load_settings(values)
    except ConfigError as e:
        found.append(f"{where}: {e}")
    return found


def test_compose_settings() -> None:
    services = compose()["services"]
    found = [p for name, s in services.items() for p in problems(s.get("environment", {}), name)]
    assert found == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_settings(overlay: str) -> None:
    docs = built(overlay)
    found = []
    for c in containers(docs):
        found += problems({e["name"]: e["value"] for e in c.get("env", []) if "value" in e}, c["name"])
    for name, config in objects(docs, "ConfigMap").items():
        found += problems(config["data"], name)
    for name, secret in objects(docs, "Secret").items():
        found += problems(dict.fromkeys(secret["data"], "x"), name)
    assert found == []


def test_dockerfile_settings() -> None:
    env = dict(re.findall(r"(MERCURY_\w+)=(\S+)", (ROOT / "Dockerfile").read_text()))
    assert env and problems(env, "Dockerfile") == []


def test_a_misspelt_or_bad_setting_is_caught() -> None:
    assert problems({"MERCURY_FED_HOST": "0.0.0.0"}, "x") == ["x: MERCURY_FED_HOST is read by nothing"]
    assert len(problems({"MERCURY_HTTP_PORT": "80a"}, "x")) == 1
