"""``python -m deploy.k8s_rules``: copy Mercury's Prometheus rules (deploy/prometheus/rules) to the cluster
Prometheus's kustomization (deploy/k8s/monitoring/rules), which kustomize can read only below itself. tests/deploy
fails while a copy differs from its source."""

from __future__ import annotations

from pathlib import Path

from deploy.procfile import ROOT

SOURCE = ROOT / "deploy" / "prometheus" / "rules"
COPY = ROOT / "deploy" / "k8s" / "monitoring" / "rules"
FILES = ("recording.yml", "alerts.yml")


def copies() -> list[tuple[Path, Path]]:
    """(source, copy) of every rule file."""
    return [(SOURCE / name, COPY / name) for name in FILES]


if __name__ == "__main__":
    for source, copy in copies():
        copy.write_bytes(source.read_bytes())
        print(f"wrote {copy}")
