"""The dashboard: one row of panels per stage of the pipeline, reading the recording rules of
deploy/prometheus/rules/recording.yml where there is one (the same numbers the alerts look at)."""

from __future__ import annotations

import json
from pathlib import Path

import attr
from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

JSON_PATH = Path(__file__).resolve().parent / "mercury.json"
K8S_JSON_PATH = Path(__file__).resolve().parents[1] / "k8s" / "base" / "grafana" / "mercury.json"
# the provisioned datasource's uid (provisioning/datasources/prometheus.yml): fixed, so the JSON needs no input
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
WIDTH = 24  # Grafana's grid is 24 columns wide
HEIGHT = 8


def _targets(queries: list[tuple[str, str]]) -> list[g.Target]:
    return [
        g.Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i), datasource=DATASOURCE)
        for i, (expr, legend) in enumerate(queries)
    ]


def _panel(title: str, unit: str, queries: list[tuple[str, str]], description: str) -> g.TimeSeries:
    return g.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=_targets(queries),
        unit=unit,
        legendDisplayMode="table",
        legendCalcs=["lastNotNull", "max"],
    )


PANELS: list[g.TimeSeries] = [
    _panel(
        "Commands: enqueued vs processed",
        "ops",
        [
            ("mercury:sequencer_journaled:rate1m", "journaled (sequencer)"),
            ("mercury:engine_commands:rate1m", "applied (engine)"),
        ],
        "Commands per second the sequencer journaled and the engine applied; a gap that stays open is engine lag.",
    ),
    _panel(
        "Sequencer answers by status",
        "ops",
        [("mercury:sequencer_commands:rate1m", "{{status}}")],
        "BUSY means the engine lags past MERCURY_BUSY_LAG; UNAVAILABLE means the journal (Redis) cannot be written.",
    ),
    _panel(
        "Engine lag",
        "short",
        [("mercury:engine_lag:max", "journaled, not applied")],
        "Journaled commands the engine has not reported yet (alert MercuryEngineLagging above 10000).",
    ),
    _panel(
        "Engine publish lag and gateway ack, p99",
        "s",
        [
            ("mercury:engine_publish_lag_seconds:p99", "engine publish p99"),
            ("mercury:gateway_ack_seconds:p99", "gateway ack p99"),
        ],
        "From the sequencer's stamp to events stored and published; from a gateway's send to its journaled ack.",
    ),
    _panel(
        "Persister lag (seconds)",
        "s",
        [("mercury:persister_lag_seconds:max", "{{consumer}}")],
        "How much older the first event not applied is than the newest (alert MercuryPersisterLagging above 30 s).",
    ),
    _panel(
        "Persister lag (events)",
        "short",
        [("mercury:persister_lag_events:max", "{{consumer}}")],
        "Events in the stream each persister has not applied yet.",
    ),
    _panel(
        "HTTP latency p50 / p99",
        "s",
        [
            ("mercury:http_request_duration_seconds:p50", "p50"),
            ("mercury:http_request_duration_seconds:p99", "p99"),
        ],
        "From a request's arrival to its response's start, all gateways and endpoints.",
    ),
    _panel(
        "HTTP answers by status",
        "reqps",
        [("mercury:http_requests:rate1m", "{{status}}"), ("mercury:http_errors:ratio_rate5m * 100", "5xx %")],
        "Requests per second by status code, and the share of 5xx (alert MercuryHTTPErrorRate above 5%).",
    ),
    _panel(
        "Feed clients and slow-client drops",
        "short",
        [
            ("sum by (process) (mercury_feed_clients)", "clients {{process}}"),
            ("mercury:feed_slow_clients_dropped:rate5m", "dropped/s {{process}}"),
        ],
        "Open market-data WebSockets per feed; drops are clients whose send queue passed MERCURY_FEED_MAX_QUEUE.",
    ),
    _panel(
        "FIX sessions and messages",
        "short",
        [
            ("sum(mercury_fix_sessions)", "sessions logged on"),
            ("sum by (direction) (rate(mercury_fix_messages_total[1m]))", "messages/s {{direction}}"),
            ("sum(rate(mercury_fix_logons_refused_total[5m]))", "logons refused/s"),
        ],
        "FIX sessions logged on, messages per second in and out, refused logons.",
    ),
    _panel(
        "Targets up",
        "short",
        [('up{job!="prometheus"}', "{{process}}")],
        "1 when Prometheus scrapes the process (alert MercuryTargetDown after a minute at 0).",
    ),
]


def dashboard() -> g.Dashboard:
    # two panels a row, in order, each with an explicit grid position so Grafana lays them out the same every time
    panels = [
        _placed(panel, x=(i % 2) * (WIDTH // 2), y=(i // 2) * HEIGHT, panel_id=i + 1) for i, panel in enumerate(PANELS)
    ]
    return g.Dashboard(
        title="Mercury",
        uid="mercury",
        description="The venue's pipeline: sequencer, engine, persisters, gateways, feeds, FIX (docs/operations.md)",
        tags=["mercury"],
        timezone="utc",
        refresh="10s",
        time=g.Time("now-1h", "now"),
        panels=panels,
    )


def _placed(panel: g.TimeSeries, x: int, y: int, panel_id: int) -> g.TimeSeries:
    placed: g.TimeSeries = attr.evolve(panel, id=panel_id, gridPos=g.GridPos(h=HEIGHT, w=WIDTH // 2, x=x, y=y))
    return placed


def render() -> str:
    return json.dumps(dashboard().to_json_data(), cls=DashboardEncoder, indent=2, sort_keys=True) + "\n"
