"""docker-compose.yml and the Dockerfile, checked without Docker: the Compose file against the Compose
Specification's JSON schema (copied into deploy/schemas, as CI has no network), every Mercury process of the
Procfile a service with the same command and settings, the mounted files present; and broken copies refused."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from deploy import procfile, targets
from deploy.procfile import ROOT
from tests.deploy.tools import dump_yaml, load_yaml, load_yaml_all

SCHEMA = json.loads((ROOT / "deploy" / "schemas" / "compose-spec.json").read_text())
BACKING = {"redis", "postgres", "mongo", "prometheus", "grafana", "jaeger"}


def schema_errors(compose: Any) -> list[str]:
    # the copied schema names draft 07 with a URL jsonschema does not know, so the validator is chosen here
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]


def procfile_problems(compose: Any, processes: list[procfile.Process]) -> list[str]:
    """Where the Compose services disagree with the Procfile's Mercury processes (python -m ...)."""
    problems = []
    services = compose["services"]
    for p in processes:
        if p.module is None:
            continue  # redis, postgres, mongo: their own images here
        service = services.get(p.name)
        if service is None:
            problems.append(f"{p.name}: no service")
            continue
        if service.get("command") != p.argv:
            problems.append(f"{p.name}: command {service.get('command')} is not the Procfile's {p.argv}")
        env = service.get("environment", {})
        for key, value in p.env.items():
            if str(env.get(key)) != value:
                problems.append(f"{p.name}: {key}={env.get(key)} where the Procfile has {value}")
        if service.get("restart") not in ("always", "unless-stopped", "on-failure"):
            problems.append(f"{p.name}: no restart policy")
        if not service.get("volumes"):
            problems.append(f"{p.name}: no volume for var/")
        ports = [v for k, v in p.env.items() if k.endswith("_PORT")]
        health = " ".join(service.get("healthcheck", {}).get("test", []))
        if ports and not any(f":{port}/" in health for port in ports):
            problems.append(f"{p.name}: no health check on one of its ports {ports}")
    return problems


def compose() -> Any:
    return load_yaml(ROOT / "docker-compose.yml")


def test_compose_matches_the_schema() -> None:
    assert schema_errors(compose()) == []


def test_every_procfile_process_is_a_service() -> None:
    processes = procfile.load()
    assert len([p for p in processes if p.module]) >= 12
    assert procfile_problems(compose(), processes) == []


def test_backing_services_and_durability() -> None:
    services = compose()["services"]
    assert BACKING <= set(services)
    assert "--appendonly" in services["redis"]["command"] and "yes" in services["redis"]["command"]
    assert services["mongo"]["image"].startswith("mongo:")  # a real MongoDB, not FerretDB
    builders = [name for name, s in services.items() if "build" in s]
    assert builders == ["sequencer"]  # built once; every other Mercury service uses that image, never pulled
    assert all(s.get("pull_policy") == "never" for s in services.values() if s.get("image") == "mercury:latest")
    for name, service in services.items():
        image = service.get("image", "")
        assert image == "mercury:latest" or re.fullmatch(r"[\w./-]+:v?\d+(\.\d+)+[\w.-]*", image), f"{name}: {image}"
        assert "healthcheck" in service or name in ("welcome", "sim"), name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):  # a bind mount of a file of this repository
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"


def test_prometheus_targets_are_compose_services() -> None:
    services = compose()["services"]
    for group in json.loads(targets.COMPOSE.read_text()):
        host, port = group["targets"][0].split(":")
        assert host in services
        assert services[host]["environment"]["MERCURY_METRICS_PORT"] == port


def test_a_broken_compose_file_fails_both_checks(tmp_path: Path) -> None:
    broken = compose()
    broken["services"]["engine"]["comand"] = broken["services"]["engine"].pop("command")
    broken["services"]["http-b"]["environment"]["MERCURY_HTTP_PORT"] = "8083"
    copy = tmp_path / "docker-compose.yml"
    copy.write_text(dump_yaml(broken))
    again = load_yaml(copy)
    assert any("comand" in e for e in schema_errors(again))
    problems = procfile_problems(again, procfile.load())
    assert any(p.startswith("engine: command") for p in problems)
    assert any("MERCURY_HTTP_PORT=8083" in p for p in problems)


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)(?: AS (\w+))?", text, re.MULTILINE)
    assert {stage for _, stage in froms} >= {"ui", "build", "runtime"}
    for image, _ in froms:
        assert re.fullmatch(r"(python|node):\d+\.\d+\.\d+-[a-z-]+", image), f"{image} is not pinned by version"
    assert any(image.startswith("python:3.11.") and image.endswith("-slim-bookworm") for image, _ in froms)
    runtime = text.split("AS runtime", 1)[1]
    user = re.findall(r"^USER (\S+)", runtime, re.MULTILINE)
    assert user and not user[-1].startswith(("root", "0")), "the runtime runs as a non-root user"
    assert "pip install -e ." in text  # setup.py's mypyc build of the engine's hot modules
    assert "npm run build" in text and "ui/dist" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", "var/", "ui/node_modules/"} <= set(ignored)


def test_yaml_helpers_round_trip() -> None:
    assert load_yaml_all("a: 1\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]


def reference_problems(compose: Any) -> list[str]:
    """What the schema cannot see: services and volumes named but not defined."""
    services, volumes = compose["services"], set(compose.get("volumes", {}))
    problems = []
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            if dependency not in services:
                problems.append(f"{name}: depends on {dependency}, which is no service")
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith(("./", "/")) and source not in volumes:
                problems.append(f"{name}: volume {source} is not declared")
    return problems


def test_references_resolve() -> None:
    assert reference_problems(compose()) == []
    broken = compose()
    broken["services"]["engine"]["depends_on"]["redsi"] = {"condition": "service_healthy"}
    del broken["volumes"]["redis-data"]
    problems = reference_problems(broken)  # depends_on is one YAML anchor: every service that shares it is named
    assert "engine: depends on redsi, which is no service" in problems
    assert "redis: volume redis-data is not declared" in problems


def test_mounts_agree_with_the_configuration() -> None:
    services = compose()["services"]
    prometheus = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    config = load_yaml(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    # prometheus.yml's paths are relative to itself: mounted at /etc/prometheus, they must land on the mounts
    assert prometheus["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    for rule_file in config["rule_files"]:
        assert f"/etc/prometheus/{rule_file.split('/')[0]}" in prometheus
    sd_dir = config["scrape_configs"][0]["file_sd_configs"][0]["files"][0].rsplit("/", 1)[0]
    assert prometheus[f"/etc/prometheus/{sd_dir}"] == "./" + str(targets.COMPOSE.parent.relative_to(ROOT))
    grafana = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    provider = load_yaml(ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "mercury.yml")
    dashboards = provider["providers"][0]["options"]["path"]
    assert grafana[f"{dashboards}/mercury.json"] == "./deploy/grafana/mercury.json"
    datasource = load_yaml(ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_dockerfile_copies_resolve() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = set(re.findall(r"^FROM \S+ AS (\w+)", text, re.MULTILINE))
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for flags, sources in re.findall(r"^COPY (--from=\w+ )?(.+) \S+$", text, re.MULTILINE):
        if flags:
            assert flags.split("=")[1].strip() in stages, flags
            continue
        for source in sources.split():
            assert source == "." or (ROOT / source).exists(), source
            assert source.rstrip("/") not in ignored, f"{source} is excluded by .dockerignore"
