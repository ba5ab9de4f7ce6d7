"""``python -m deploy.grafana``: write deploy/grafana/mercury.json from deploy/grafana/dashboard.py."""

from __future__ import annotations

from deploy.grafana.dashboard import JSON_PATH, render

if __name__ == "__main__":
    JSON_PATH.write_text(render())
    print(f"wrote {JSON_PATH}")
