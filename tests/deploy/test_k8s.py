"""deploy/k8s: each overlay built with kustomize, every object validated offline against Kubernetes 1.33's
schemas (strict: an unknown field is an error), and the shape Mercury needs checked: the engine shard's QoS, HPAs,
probes, PDBs, Ingress routing like the front door, NetworkPolicies, Secrets; a broken copy is refused."""

from __future__ import annotations

import base64
import re
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from deploy import procfile
from frontdoor.nginx import LISTEN_KEY, MARKET_PATHS
from tests.deploy.tools import load_yaml_all, run, tool

K8S = procfile.ROOT / "deploy" / "k8s"
VERSION = "1.33"
OVERLAYS = ("dev", "prod")
WORKLOADS = ("Deployment", "StatefulSet")


def kustomize(kustomization: Path) -> list[dict[str, Any]]:
    result = run(tool("kustomize"), "build", str(kustomization))
    assert result.returncode == 0, result.stderr
    return load_yaml_all(result.stdout)


def build(root: Path, overlay: str) -> list[dict[str, Any]]:
    return kustomize(root / "overlays" / overlay)


@cache
def built(overlay: str) -> list[dict[str, Any]]:
    return build(K8S, overlay)


def validation_errors(docs: list[dict[str, Any]]) -> list[str]:
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {str(e).splitlines()[0]}")
    return errors


def objects(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        c
        for kind in WORKLOADS
        for w in objects(docs, kind).values()
        for c in w["spec"]["template"]["spec"]["containers"]
    ]


def mercury_containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The containers of Mercury's own image (not Grafana's)."""
    return [c for c in containers(docs) if c["image"].split(":")[0].endswith("mercury")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_is_valid_kubernetes(overlay: str) -> None:
    docs = built(overlay)
    assert len(docs) >= 20
    assert validation_errors(docs) == []
    namespaces = {d["metadata"].get("namespace") for d in docs}
    assert len(namespaces) == 1 and None not in namespaces


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_engine_shard_is_guaranteed_qos(overlay: str) -> None:
    shard = objects(built(overlay), "StatefulSet")["engine-shard"]
    assert shard["spec"]["replicas"] == 1  # one engine per journal
    pod = shard["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["sequencer", "engine"]
    for c in pod["containers"]:
        resources = c["resources"]
        assert resources["requests"] == resources["limits"], c["name"]  # Guaranteed: every container, cpu and memory
        assert set(resources["limits"]) == {"cpu", "memory"}
        assert resources["limits"]["cpu"] == "1"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaling_probes_and_budgets(overlay: str) -> None:
    docs = built(overlay)
    deployments = objects(docs, "Deployment")
    hpas = objects(docs, "HorizontalPodAutoscaler")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()} == {"http-gateway", "feed"}
    for h in hpas.values():
        assert h["spec"]["scaleTargetRef"]["name"] in deployments
        assert 1 <= h["spec"]["minReplicas"] <= h["spec"]["maxReplicas"]
    pods = {
        name: w["spec"]["template"]["metadata"]["labels"]
        for kind in WORKLOADS
        for name, w in objects(docs, kind).items()
    }
    for pdb in objects(docs, "PodDisruptionBudget").values():
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert any(selector.items() <= labels.items() for labels in pods.values()), pdb["metadata"]["name"]
    for c in containers(docs):
        assert "readinessProbe" in c and "livenessProbe" in c, c["name"]
    services = objects(docs, "Service")
    for backing in ("redis", "postgres", "mongo"):
        assert services[backing]["spec"]["type"] == "ExternalName"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_run_the_procfile_commands(overlay: str) -> None:
    docs = built(overlay)
    by_command: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for c in mercury_containers(docs):
        env = {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
        by_command.setdefault(tuple(c["command"]), []).append(env)
    # the front door is the Ingress here; the welcome banner and the simulator are for a local run
    local_only = {"frontdoor", "frontdoor.welcome", "sim"}
    for module in {p.module for p in procfile.load() if p.module and p.module not in local_only}:
        instances = [p for p in procfile.load() if p.module == module]
        envs = by_command.get(tuple(instances[0].argv))
        assert envs, f"no container runs {instances[0].argv}"
        for env in envs:
            # the container's ports and metrics port are one Procfile instance's (e.g. http-a's)
            assert any(all(env.get(k) == v for k, v in p.env.items()) for p in instances), (module, env)


def route(ingresses: dict[str, dict[str, Any]], path: str) -> str:
    """Where ingress-nginx sends a path: regex paths of the host, longest first, case-insensitive."""
    paths = [
        (p["path"], p["backend"]["service"]) for i in ingresses.values() for p in i["spec"]["rules"][0]["http"]["paths"]
    ]
    for pattern, service in sorted(paths, key=lambda p: -len(p[0])):
        if re.match(pattern, path, re.IGNORECASE):
            return f"{service['name']}:{service['port']['name']}"
    return "none"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_routes_like_the_front_door(overlay: str) -> None:
    ingresses = objects(built(overlay), "Ingress")
    paths = [p["path"] for i in ingresses.values() for p in i["spec"]["rules"][0]["http"]["paths"]]
    # the same expressions as frontdoor/nginx.py, so a market path added there must be added here
    assert f"/api/v3/({MARKET_PATHS})$" in paths
    assert f"/ws/{LISTEN_KEY}$" in paths
    expected = {
        "/api/v3/depth": "feed:rest",
        "/api/v3/ticker/24hr": "feed:rest",
        "/api/v3/klines": "feed:rest",
        "/api/v3/order": "http-gateway:http",
        "/api/v3/exchangeInfo": "http-gateway:http",
        "/ws/btcusdt@depth": "feed:streams",
        "/ws": "feed:streams",
        "/stream": "feed:streams",
        "/ws/" + "a" * 60: "http-gateway:http",
        "/ws-api/v3": "http-gateway:http",
        "/ui/": "http-gateway:http",
    }
    assert {path: route(ingresses, path) for path in expected} == expected
    # the gateways' /ui-config.json sends the UI to this same host's port 80, the Ingress
    gateway = next(c for c in containers(built(overlay)) if c["name"] == "http")
    env = {e["name"]: e["value"] for e in gateway["env"]}
    assert env["MERCURY_FEED_REST_PORT"] == env["MERCURY_FEED_WS_PORT"] == "80"
    feeds = ingresses["mercury-feeds"]["metadata"]["annotations"]
    assert feeds["nginx.ingress.kubernetes.io/upstream-hash-by"] == "$binary_remote_addr"  # the front door's ip_hash


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_and_secrets(overlay: str) -> None:
    docs = built(overlay)
    policies = objects(docs, "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    engine_ports = {p["port"] for rule in policies["engine-shard"]["spec"]["ingress"] for p in rule["ports"]}
    assert engine_ports == {7001, 7003}
    # the policies pick Mercury's pods by the part-of label that kustomization.yaml puts on every pod template
    for kind in WORKLOADS:
        for name, w in objects(docs, kind).items():
            assert w["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mercury", name
    metrics = {p["port"] for rule in policies["metrics-from-monitoring"]["spec"]["ingress"] for p in rule["ports"]}
    # containers are named after their Prometheus job, so a kubernetes_sd relabeling gives the Compose series
    assert {c["name"] for c in mercury_containers(docs)} == {p.job for p in procfile.load() if p.job}
    # every container's metrics port, and nothing else
    exported = {p["containerPort"] for c in containers(docs) for p in c["ports"] if p["name"].startswith("metrics")}
    assert metrics == exported and len(exported) == 8
    refs = {r["secretRef"]["name"] for c in containers(docs) for r in c.get("envFrom", []) if "secretRef" in r}
    secrets = objects(docs, "Secret")
    if overlay == "dev":
        assert refs <= set(secrets)
        key = base64.b64decode(base64.b64decode(next(iter(secrets.values()))["data"]["MERCURY_KEY_ENCRYPTION_KEY"]))
        assert len(key) == 32  # what persistence.apikeys accepts
    else:
        assert refs == {"mercury-secrets"} and not secrets  # the operator creates it (docs/operations.md)


def test_a_broken_copy_is_refused(tmp_path: Path) -> None:
    shutil.copytree(K8S, tmp_path / "k8s")
    gateway = tmp_path / "k8s" / "base" / "http-gateway.yaml"
    gateway.write_text(gateway.read_text().replace("readinessProbe:", "readinesProbe:", 1))
    errors = validation_errors(build(tmp_path / "k8s", "dev"))
    assert len(errors) == 1 and "Deployment/http-gateway" in errors[0] and "readinesProbe" in errors[0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grafana_is_provisioned_with_the_dashboard_and_a_prometheus_datasource(overlay: str) -> None:
    docs = built(overlay)
    maps = {m["metadata"]["name"].rsplit("-", 1)[0]: m for m in docs if m["kind"] == "ConfigMap"}
    dashboard = maps["grafana-dashboards"]["data"]["mercury.json"]
    assert dashboard == (procfile.ROOT / "deploy" / "grafana" / "mercury.json").read_text()
    assert "uid: prometheus" in maps["grafana-datasources"]["data"]["datasources.yml"]
    (grafana,) = [c for c in containers(docs) if c["name"] == "grafana"]
    mounts = {m["mountPath"] for m in grafana["volumeMounts"]}
    assert {"/etc/grafana/provisioning/datasources", "/var/lib/grafana/dashboards"} <= mounts
