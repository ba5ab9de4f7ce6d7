"""``python -m deploy.grafana``: write deploy/grafana/mercury.json from deploy/grafana/dashboard.py, and its copy
for Kubernetes (kustomize reads files only below a kustomization, so deploy/k8s/base/grafana holds one)."""

from __future__ import annotations

from deploy.grafana.dashboard import JSON_PATH, K8S_JSON_PATH, render

if __name__ == "__main__":
    for path in (JSON_PATH, K8S_JSON_PATH):
        path.write_text(render())
        print(f"wrote {path}")
