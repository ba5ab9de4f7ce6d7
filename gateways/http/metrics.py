"""The HTTP gateway's Prometheus series: requests by endpoint, method and status, their latency, open WebSockets.

Endpoints are the routes' templates (never the raw path, whose values a client chooses: a scan of random paths
must not grow the series without bound)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import Message, Receive, Scope, Send

REQUESTS = Counter("mercury_http_requests_total", "HTTP requests answered, by endpoint, method and status",
                   ["endpoint", "method", "status"])  # fmt: skip
LATENCY = Histogram(
    "mercury_http_request_duration_seconds",
    "From a request's arrival to its response's start, by endpoint",
    ["endpoint"],
    buckets=(2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1, 5),
)
WEBSOCKETS = Gauge("mercury_http_websockets", "Open WebSocket connections, by endpoint", ["endpoint"])

Dispatch = Callable[[Scope, Receive, Send], Awaitable[None]]


class Endpoints:
    """Path -> the endpoint label: an /api/ route's own path, the user stream's template, the UI, or "other"."""

    def __init__(self, api_paths: Iterable[str]) -> None:
        self.known = frozenset(api_paths) | {"/ws-api/v3", "/openapi.json", "/", "/ui-config.json"}

    def of(self, path: str) -> str:
        if path in self.known:
            return path
        if path.startswith("/ws/"):
            return "/ws/{listenKey}"
        if path.startswith("/ui/") or path == "/ui":
            return "/ui"
        return "other"


async def instrumented(dispatch: Dispatch, endpoints: Endpoints, scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "http":
        endpoint = endpoints.of(scope["path"])
        started = time.perf_counter()
        status = 0  # no response started: the client went away, or the server failed before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                LATENCY.labels(endpoint).observe(time.perf_counter() - started)
            await send(message)

        try:
            await dispatch(scope, receive, sending)
        finally:
            REQUESTS.labels(endpoint, scope["method"], str(status)).inc()
    elif kind == "websocket":
        gauge = WEBSOCKETS.labels(endpoints.of(scope["path"]))
        gauge.inc()
        try:
            await dispatch(scope, receive, send)
        finally:
            gauge.dec()
    else:
        await dispatch(scope, receive, send)
