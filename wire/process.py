"""Start-up shared by Mercury's processes: logging, settings, the venue, a Redis client, a ZMQ context and the
Prometheus exporter. Nothing connects here: Redis is first contacted by the process's own recovery step."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
import zmq
from prometheus_client import start_http_server

from wire.config import Settings, load_settings
from wire.venue import DEFAULT_VENUE, Venue, load_venue


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    venue: Venue
    redis: redis.Redis
    zmq: zmq.Context[zmq.Socket[bytes]]


def start_process() -> Runtime:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = load_settings()
    venue = load_venue(settings.venue_file or DEFAULT_VENUE)
    r = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=10)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    return Runtime(settings, venue, r, zmq.Context())
