"""``python -m feeds``: one market-data feed process, REST on MERCURY_FEED_REST_PORT and WebSocket streams on
MERCURY_FEED_WS_PORT. Run as many as the clients need (the Procfile runs two): each follows the engine on its own and
they share nothing but Redis and the MongoDB store.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import redis.asyncio as aioredis
import uvicorn
import uvloop
from prometheus_client import start_http_server
from websockets.asyncio.server import serve

from feeds.history import MarketHistory
from feeds.hub import Hub
from feeds.market import Market
from feeds.rest import create_app
from feeds.source import Source
from feeds.ws import StreamServer
from gateways.binance.limits import Limits, RateLimiter
from gateways.clock import now_ms
from persistence.stream import Registry
from wire.config import Settings, load_settings
from wire.process import cancel_until_done
from wire.venue import DEFAULT_VENUE, Venue, load_venue

log = logging.getLogger("mercury.feed")

FAST = 0.1  # s: the 100 ms depth streams, and closing candles by the clock
STOP_WAIT = 1.0  # s the feed's other tasks get to end once one of them has
GRACE = 250_000_000  # ns a candle stays open past its end for trades still in the pipeline (feeds.candles)


async def timers(hub: Hub, ready: asyncio.Event) -> None:
    await ready.wait()
    step = 0
    while True:
        await asyncio.sleep(FAST - time.monotonic() % FAST)
        step += 1
        now = time.time_ns()
        hub.tick(100, now // 1_000_000)
        hub.close_candles(now - GRACE)
        if step % 10 == 0:
            hub.tick(1000, now // 1_000_000)
            hub.tickers(now // 1_000_000)


async def run(settings: Settings, venue: Venue) -> None:
    r = aioredis.from_url(settings.redis_url)
    market = Market(venue)
    hub = Hub(market, settings.feed_max_queue)
    history = MarketHistory(settings.mongodb_url, Registry(r, venue.shard))
    name = f"feed-{settings.feed_ws_port}"
    source = Source(settings, market, hub, r, name, seed=history.seed)
    ready = source.ready.is_set
    streams = StreamServer(hub, ready, settings.feed_max_clients)
    # market data spends the same request weight per IP as the gateways' requests, counted with theirs in Redis
    limiter = RateLimiter(Limits.of(settings))
    app = create_app(market, history, ready, limiter)
    rest = uvicorn.Server(uvicorn.Config(app, host=settings.feed_host,
                                         port=settings.feed_rest_port, http="httptools", log_level="warning",
                                         access_log=False, server_header=False, date_header=False,
                                         forwarded_allow_ips=settings.trusted_proxies))  # fmt: skip
    async with serve(streams.handle, settings.feed_host, settings.feed_ws_port, process_request=streams.process_request,
                     ping_interval=settings.feed_ping_seconds, ping_timeout=settings.feed_ping_seconds,
                     close_timeout=2, max_size=65_536,
                     max_queue=16, compression=None):  # fmt: skip
        log.info("feed %s: REST on %s:%d, streams on ws://%s:%d", name, settings.feed_host, settings.feed_rest_port,
                 settings.feed_host, settings.feed_ws_port)  # fmt: skip
        tasks = [asyncio.create_task(source.run()), asyncio.create_task(timers(hub, source.ready)),
                 asyncio.create_task(rest.serve()), asyncio.create_task(limiter.run(r, now_ms))]  # fmt: skip
        await source.ready.wait()
        log.info("feed ready")
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # its source awaits Redis, whose client can lose a cancellation (wire.process.cancel_until_done)
        await cancel_until_done(tasks, STOP_WAIT)
        for task in done:
            task.result()  # a task that ended is a failure: raise it
    await history.close()
    await r.aclose()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = load_settings()
    venue = load_venue(settings.venue_file or DEFAULT_VENUE)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    try:
        uvloop.run(run(settings, venue))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
