"""Metrics read when Prometheus scrapes, not kept up to date by the process: they cost nothing between scrapes.

``StreamLengths`` reports the length of the shard's Redis streams (the journal, the events stream) from the
exporter's own thread with its own short-timeout connection, so a slow or absent Redis delays a scrape, never the
sequencer's loop."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

SCRAPE_TIMEOUT = 0.5  # s: one XLEN per stream; a scrape without the figure beats a scrape that hangs


class StreamLengths(Collector):
    def __init__(self, redis_url: str, streams: Mapping[str, str]) -> None:
        self.redis = redis.Redis.from_url(redis_url, socket_connect_timeout=SCRAPE_TIMEOUT,
                                          socket_timeout=SCRAPE_TIMEOUT)  # fmt: skip
        self.streams = dict(streams)  # label -> key

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("mercury_stream_entries", "Entries in a shard's Redis stream", labels=["stream"])
        for name, key in self.streams.items():
            try:
                family.add_metric([name], float(self.redis.xlen(key)))
            except redis.RedisError:
                continue  # Redis down: the series is absent for this scrape (an alert sees the absence)
        yield family


def register_stream_lengths(redis_url: str, streams: Mapping[str, str]) -> StreamLengths:
    collector = StreamLengths(redis_url, streams)
    REGISTRY.register(collector)
    return collector
