"""deploy/k8s/monitoring: the cluster's Prometheus. Built with kustomize and validated offline against Kubernetes
1.33's schemas; its configuration and rules, as the ConfigMap mounts them, checked by promtool; its rules the same as
deploy/prometheus/rules; its service discovery's keep rules matching every Mercury exporter of both overlays and
their jobs those of the Procfile; reachable where Grafana's datasource looks; a broken copy refused."""

from __future__ import annotations

import re
import shutil
from functools import cache
from pathlib import Path
from typing import Any

from deploy import k8s_rules, procfile
from tests.deploy.test_k8s import OVERLAYS, built, kustomize, mercury_containers, objects, validation_errors
from tests.deploy.tools import dump_yaml, load_yaml, load_yaml_text, run, tool

MONITORING = procfile.ROOT / "deploy" / "k8s" / "monitoring"


@cache
def monitoring() -> list[dict[str, Any]]:
    return kustomize(MONITORING)


def config_map(docs: list[dict[str, Any]]) -> dict[str, str]:
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("prometheus-config")]
    data: dict[str, str] = cm["data"]
    return data


def test_it_is_valid_kubernetes_in_the_monitoring_namespace() -> None:
    docs = monitoring()
    assert validation_errors(docs) == []
    namespaced = [d for d in docs if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")]
    assert {d["metadata"]["namespace"] for d in namespaced} == {"monitoring"}
    assert "monitoring" in objects(docs, "Namespace")


# the roles Prometheus's Kubernetes discovery knows
ROLES = {"node", "service", "pod", "endpoints", "endpointslice", "ingress"}


def promtool_check(files: dict[str, str], directory: Path) -> tuple[bool, str]:
    """promtool's check of the configuration and rules as the pod mounts them in /etc/prometheus. Debian's promtool
    is built without Kubernetes discovery (it refuses the field kubernetes_sd_configs), so it checks a copy whose
    discovery is a static target; the discovery itself is checked here: one role Prometheus knows."""
    config = load_yaml_text(files["prometheus.yml"])
    problems = []
    for scrape in config["scrape_configs"]:
        for sd in scrape.pop("kubernetes_sd_configs", []):
            if sd.get("role") not in ROLES or set(sd) - {"role", "namespaces", "selectors"}:
                problems.append(f"kubernetes_sd_configs: {sd} (a role of {sorted(ROLES)})")
        scrape["static_configs"] = [{"targets": ["127.0.0.1:9101"]}]
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    (directory / "prometheus.yml").write_text(dump_yaml(config))
    result = run(tool("promtool"), "check", "config", str(directory / "prometheus.yml"))
    output = "\n".join(problems) + result.stdout + result.stderr
    return result.returncode == 0 and not problems and "2 rule files found" in result.stdout, output


def test_the_mounted_configuration_and_rules_pass_promtool(tmp_path: Path) -> None:
    ok, output = promtool_check(config_map(monitoring()), tmp_path)
    assert ok, output
    (deployment,) = objects(monitoring(), "Deployment").values()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert "--config.file=/etc/prometheus/prometheus.yml" in container["args"] and mounts["config"] == "/etc/prometheus"


def test_its_rules_are_copies_of_deploy_prometheus_rules() -> None:
    data = config_map(monitoring())
    for source, copy in k8s_rules.copies():
        assert copy.read_text() == source.read_text(), f"{copy} is stale: python -m deploy.k8s_rules"
        assert data[copy.name] == source.read_text()


def _relabel(config: dict[str, Any]) -> list[dict[str, Any]]:
    (scrape,) = config["scrape_configs"]
    assert scrape["kubernetes_sd_configs"] == [{"role": "pod"}]
    rules: list[dict[str, Any]] = scrape["relabel_configs"]
    return rules


def _kept(rules: list[dict[str, Any]], meta: dict[str, str]) -> bool:
    """Whether Prometheus's keep/drop steps let a target with these discovered labels through (its regexes are
    anchored at both ends, as ``re.fullmatch``)."""
    for rule in rules:
        action = rule.get("action", "replace")
        if action not in ("keep", "drop"):
            continue
        value = rule.get("separator", ";").join(meta.get(label, "") for label in rule["source_labels"])
        matched = re.fullmatch(rule["regex"], value) is not None
        if matched != (action == "keep"):
            return False
    return True


def test_service_discovery_keeps_every_mercury_exporter_and_names_its_procfile_job() -> None:
    rules = _relabel(load_yaml(MONITORING / "prometheus.yml"))
    jobs = {p.job for p in procfile.load() if p.metrics_port is not None}
    for overlay in OVERLAYS:
        docs = built(overlay)
        found = set()
        for workload in [*objects(docs, "Deployment").values(), *objects(docs, "StatefulSet").values()]:
            template = workload["spec"]["template"]
            labels = template["metadata"].get("labels", {})
            for container in template["spec"]["containers"]:
                for port in container.get("ports", []):
                    meta = {
                        "__meta_kubernetes_pod_label_app_kubernetes_io_part_of": labels.get(
                            "app.kubernetes.io/part-of", ""
                        ),
                        "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                        "__meta_kubernetes_pod_phase": "Running",
                    }
                    kept = _kept(rules, meta)
                    assert kept == port.get("name", "").startswith("metrics"), (overlay, container["name"], port)
                    if kept:
                        found.add(container["name"])
        # each kept container's name is its job (the relabelling copies it), and every Procfile job is found
        assert found == jobs, (overlay, found ^ jobs)
        assert {c["name"] for c in mercury_containers(docs) if any(
            p.get("name", "").startswith("metrics") for p in c.get("ports", []))} == jobs  # fmt: skip
    assert {"target_label": "job", "source_labels": ["__meta_kubernetes_pod_container_name"]} in rules
    # a pod that is not Mercury's, or a port that is not an exporter, is not scraped
    assert not _kept(rules, {"__meta_kubernetes_pod_label_app_kubernetes_io_part_of": "other",
                             "__meta_kubernetes_pod_container_port_name": "metrics"})  # fmt: skip
    assert not _kept(rules, {"__meta_kubernetes_pod_label_app_kubernetes_io_part_of": "mercury",
                             "__meta_kubernetes_pod_container_port_name": "http"})  # fmt: skip


def test_grafana_finds_it_and_it_may_discover_pods() -> None:
    docs = monitoring()
    service = objects(docs, "Service")["prometheus"]
    assert service["metadata"]["namespace"] == "monitoring" and service["spec"]["ports"][0]["port"] == 9090
    for overlay in OVERLAYS:
        maps = {m["metadata"]["name"].rsplit("-", 1)[0]: m for m in built(overlay) if m["kind"] == "ConfigMap"}
        assert "url: http://prometheus.monitoring.svc:9090" in maps["grafana-datasources"]["data"]["datasources.yml"]
    (deployment,) = objects(docs, "Deployment").values()
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    (binding,) = objects(docs, "ClusterRoleBinding").values()
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "monitoring"}]
    role = objects(docs, "ClusterRole")[binding["roleRef"]["name"]]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]


def test_a_broken_copy_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "monitoring"
    shutil.copytree(MONITORING, copy)
    deployment = copy / "prometheus.yaml"
    deployment.write_text(deployment.read_text().replace("serviceAccountName:", "serviceAcountName:", 1))
    errors = validation_errors(kustomize(copy))
    assert len(errors) == 1 and "Deployment/prometheus" in errors[0] and "serviceAcountName" in errors[0]
    config = copy / "prometheus.yml"
    text = config.read_text()
    for broken, expected in ((text.replace("role: pod", "role: pods", 1), "role"),
                             (text.replace("action: keep", "action: kep", 1), "kep")):  # fmt: skip
        config.write_text(broken)
        ok, output = promtool_check(config_map(kustomize(copy)), tmp_path / expected)
        assert not ok and expected in output, output
