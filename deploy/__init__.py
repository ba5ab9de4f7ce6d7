"""Deployment as code and its offline checks: Prometheus, Grafana, Docker Compose, Kubernetes."""
