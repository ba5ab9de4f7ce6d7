"""``python -m gateways.http``: the Binance-compatible HTTP gateway on MERCURY_HTTP_PORT (uvicorn, uvloop).

Several gateway processes may run at once (each with its own port, or one port with SO_REUSEPORT behind a load
balancer): they share nothing but the sequencer, Redis and PostgreSQL.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable
from types import FrameType

import uvicorn

from gateways.http.app import STOP_RESULT_WAIT, create_app
from gateways.startup import start_gateway
from wire.process import run_until_stopped

# s a stopping gateway waits for open connections and requests in flight: a WebSocket peer that never answers the
# close (a client whose process went away without closing) must not hold the stop for ever, and a RESULT order
# waiting on an engine that is stopping too would wait its whole RESULT_TIMEOUT. The gateway's whole stop (this
# grace, then its lifespan's bounded steps) must end before Redis and PostgreSQL go (persistence.stop_last.DELAY)
GRACE = 1
assert STOP_RESULT_WAIT < GRACE  # requests waiting for the engine are answered before the grace cancels them
log = logging.getLogger("mercury.gateway.http")


class Server(uvicorn.Server):
    """uvicorn's server, telling the gateway the moment a stop signal arrives: uvicorn itself only stops accepting,
    waits GRACE for requests in flight, then cancels them mid-request (a traceback in the log and no answer)."""

    def __init__(self, config: uvicorn.Config, on_stop: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_stop = on_stop

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            # only now, with the socket listening: a client that waits for this line and connects at once (the
            # tests, the benches) would otherwise race the bind that follows the lifespan's startup
            log.info("gateway ready")

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.on_stop()
        super().handle_exit(sig, frame)


def main() -> int:
    started = start_gateway()
    if started is None:
        return 2
    settings, venue, cipher = started
    app = create_app(settings, venue, cipher)
    log.info("HTTP gateway starting on %s:%d", settings.http_host, settings.http_port)
    # uvicorn's proxy-headers middleware takes the client's address from the front door's X-Forwarded-For (about
    # 1.5 us a request); no Server/Date headers: each is work on every request of the hot path (docs/benchmarks.md)
    config = uvicorn.Config(app, host=settings.http_host, port=settings.http_port, loop="uvloop", http="httptools",
                            log_level="warning", access_log=False, forwarded_allow_ips=settings.trusted_proxies,
                            server_header=False, date_header=False, timeout_graceful_shutdown=GRACE)  # fmt: skip
    server = Server(config, app.gateway.stopping)
    run_until_stopped(server.run)
    return 0 if server.started else 3  # as uvicorn.run: 3 when it could not start (the port taken, say)


if __name__ == "__main__":
    sys.exit(main())
