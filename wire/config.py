"""Process settings from ``MERCURY_*`` environment variables, read once at process start into a frozen dataclass.

The engine core never reads the environment: its service reads Settings and passes values in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from wire.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6479/0"  # the project-local Redis of the Procfile
    postgres_url: str = "postgresql://mercury@127.0.0.1:6543/mercury"  # the project-local PostgreSQL of the Procfile
    mongodb_url: str = "mongodb://127.0.0.1:27018/mercury"  # the Procfile's FerretDB, or any real MongoDB
    venue_file: str = ""  # empty: config/venue.toml in the repository
    sequencer_endpoint: str = "tcp://127.0.0.1:7001"  # ROUTER: gateways submit commands here
    journal_pub_endpoint: str = "tcp://127.0.0.1:7002"  # PUB: journaled batches to the engine
    events_pub_endpoint: str = "tcp://127.0.0.1:7003"  # PUB: events and heartbeats from the engine
    engine_core: int = -1  # CPU the matching thread is pinned to; -1: the last one
    snapshot_every: int = 200_000  # the engine snapshots after this many commands (and on clean shutdown)
    busy_lag: int = 100_000  # the sequencer refuses new orders when the engine is this many commands behind
    max_batch: int = 4096  # most commands the sequencer journals in one stream entry
    dedupe_window: int = 1_000_000  # request ids the sequencer remembers to refuse duplicates
    http_host: str = "127.0.0.1"  # the HTTP gateway's address (gateways/http)
    http_port: int = 8080
    weight_per_minute: int = 6_000  # the HTTP gateway's request-weight limit per IP (Binance's)
    orders_per_10s: int = 100  # ... and its new-order limits per account
    orders_per_day: int = 200_000
    # peers (addresses or networks, comma separated) whose X-Forwarded-For names the client: the front door. Behind
    # it every request comes from its address; the per-IP limits count the client it names instead ("": no peer)
    trusted_proxies: str = "127.0.0.1,::1"
    feed_host: str = "127.0.0.1"  # a market-data feed's address (feeds/)
    feed_rest_port: int = 8090  # ... its REST port (the public market-data endpoints)
    feed_ws_port: int = 8091  # ... and its WebSocket streams' port
    feed_max_queue: int = 1 << 20  # bytes a feed client may have waiting to be sent before it is dropped as too slow
    feed_max_clients: int = 10_000  # WebSocket connections one feed process accepts
    feed_ping_seconds: int = 20  # a feed pings each client this often and closes one that has not answered as long
    fix_host: str = "127.0.0.1"  # the FIX gateway's address (gateways/fix)
    fix_port: int = 0  # ... and port (0: the one config/fix.toml gives, 9878)
    fix_config_file: str = ""  # empty: config/fix.toml in the repository
    fix_state_dir: str = "var/fix"  # QuickFIX's message store (sequence numbers) and session logs
    frontdoor_host: str = "127.0.0.1"  # the front door (frontdoor/: nginx) of the local run
    frontdoor_port: int = 8080
    frontdoor_gateways: str = "127.0.0.1:8081,127.0.0.1:8082"  # the HTTP gateways behind it
    frontdoor_feeds: str = "127.0.0.1:8090/8091,127.0.0.1:8092/8093"  # the feeds behind it: host:rest_port/ws_port
    frontdoor_state_dir: str = "var/frontdoor"  # its rendered configuration, pid, logs and buffers
    metrics_port: int = 0  # Prometheus exporter port of the process (0: none)
    # the local run's Prometheus (bin/prometheus-local), under /prometheus/; not 9090, where the service Debian's
    # prometheus package starts on a machine with systemd listens
    prometheus_port: int = 9095
    trace_every: int = 0  # OpenTelemetry: trace the commands whose in_seq is a multiple of this (0: none; wire/tracing)
    trace_dir: str = "var/traces"  # ... their spans as JSON lines, one file per process, unless OTLP is configured
    research_host: str = "127.0.0.1"  # the inference service's address (research/serve)
    research_port: int = 8095  # the inference service (research/serve), served by the front door under /research/
    research_train_every: int = 0  # seconds between the inference service's own training rounds (0: none)


_CASTS = {"str": str, "int": int}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, field in Settings.__dataclass_fields__.items():
        key = "MERCURY_" + name.upper()
        if key in env:
            cast = _CASTS[str(field.type)]
            try:
                values[name] = cast(env[key])
            except ValueError:
                raise ConfigError(f"{key}={env[key]!r} is not a valid {field.type}") from None
    return Settings(**values)  # type: ignore[arg-type]
