"""Mercury's Grafana dashboard as code (grafanalib): ``python -m deploy.grafana`` writes ``mercury.json``, which
Grafana loads through ``provisioning/`` (docker-compose.yml mounts both)."""
