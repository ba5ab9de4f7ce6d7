"""Start-up shared by Mercury's processes: logging, settings, the venue, a Redis client, a ZMQ context and the
Prometheus exporter. Nothing connects here: Redis is first contacted by the process's own recovery step."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

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


def run_until_stopped(serve: Callable[[], None]) -> None:
    """Run a blocking server (``uvicorn.run``) whose stop is SIGINT or SIGTERM, and return quietly after it.

    uvicorn catches the stop signal, shuts down gracefully, then raises the signal again so the default behaviour
    follows: for SIGINT a KeyboardInterrupt traceback in the log. Under ``./mercury start`` a Ctrl-C reaches every
    process and honcho sends SIGTERM right after, so which of the two is re-raised depends on timing. Both raise
    KeyboardInterrupt here (SIGTERM included), and that is this process's normal end."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        serve()
    except KeyboardInterrupt:
        pass


# s between two cancellations of a task that is still running (cancel_until_done)
RECANCEL = 0.02


async def cancel_until_done(tasks: Iterable[asyncio.Task[Any]], timeout: float) -> set[asyncio.Task[Any]]:
    """Cancel ``tasks`` and wait at most ``timeout`` s for them to end, cancelling again every RECANCEL s; the ones
    still running then are returned.

    One cancel is not enough: redis-py (8.2, its asyncio client) loses a cancellation that arrives while a command
    is in flight (over a real Redis, most of them: tests/wire/test_process.py), and the task runs on. A stop that
    cancelled once and waited then left the task to asyncio.run's own final cancel, which waits for it without
    bound: the process never exited (until the supervisor's SIGKILL)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL, left))
    return pending
