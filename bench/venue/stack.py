"""A whole private venue, started the way ``./mercury start`` starts the real one, on free ports.

Redis, PostgreSQL and the MongoDB-protocol server (FerretDB on that PostgreSQL), the sequencer, the engine, both
persisters, two HTTP gateways, two market-data feeds and the front door (nginx) in front of them: the Procfile's
processes less the FIX gateway and the welcome banner, each with its log in the run's directory. One environment
for all of them, as under honcho; ports and limits differ only where the Procfile's do.

Nothing here uses the fixed ports of ``./mercury start`` (8080, 6479, ...), so it runs beside a real venue.
"""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from bench.venue.cpu import Watched
from persistence.apikeys import ENV_KEY
from tests.feeds.conftest import READY as FEED_READY
from tests.harness import MongoServer, PostgresServer, Service, Venue, free_port, wait_for

# The HTTP gateways count request weight per client IP, and behind the front door every request comes from nginx
# at 127.0.0.1: one IP for the whole load. The load spreads orders over enough accounts to stay within the
# per-account order limits (MERCURY_ORDERS_PER_10S, kept at its default), but the per-IP weight must be raised.
LOAD_LIMITS = {"weight_per_minute": "1000000000", "orders_per_day": "1000000000"}


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class Stack:
    """The private venue. ``services`` holds every Mercury process by its Procfile name (restartable: the chaos demo
    kills and restarts them); ``start`` brings everything up in dependency order."""

    def __init__(self, directory: Path, settings: dict[str, str] | None = None) -> None:
        self.dir = directory
        self.postgres = PostgresServer()
        self.mongo = MongoServer(self.postgres)
        self.venue = Venue(directory, **{**LOAD_LIMITS, **(settings or {})})
        self.kek = base64.b64encode(os.urandom(32)).decode()  # the key-encryption key of this venue's API secrets
        self.pg_url = ""
        self.mongo_url = ""
        self.url = ""  # the front door: http://127.0.0.1:<port>
        self.feed_urls: list[tuple[str, str]] = []  # (rest, ws) of each feed, bypassing the front door
        self.gateway_urls: list[str] = []
        self.services: dict[str, Service] = {}

    @property
    def env(self) -> dict[str, str]:
        return self.venue.env

    def start(self, say: Callable[[str], None] = print) -> Stack:
        t0 = time.monotonic()
        say("starting PostgreSQL and the MongoDB-protocol server")
        self.postgres.start()
        self.mongo.start()
        self.pg_url = self.postgres.create_database("bench")
        self.mongo_url = self.mongo.url("bench")
        self.venue.env.update({"MERCURY_POSTGRES_URL": self.pg_url, "MERCURY_MONGODB_URL": self.mongo_url,
                               ENV_KEY: self.kek})  # fmt: skip
        say("starting Redis, the sequencer and the engine")
        self.venue.start()
        self.services["sequencer"] = self.venue.sequencer
        self.services["engine"] = self.venue.engine
        self._add("pg-persister", "persistence.postgres", "postgres persister at out_seq")
        self._add("mongo-persister", "persistence.mongo", "mongo persister at out_seq")
        for name in ("http-a", "http-b"):
            port = free_port()
            self._add(name, "gateways.http", "gateway ready", MERCURY_HTTP_PORT=str(port))
            self.gateway_urls.append(f"127.0.0.1:{port}")
        for name in ("feed-a", "feed-b"):
            rest, ws = free_port(), free_port()
            self._add(name, "feeds", FEED_READY, MERCURY_FEED_REST_PORT=str(rest), MERCURY_FEED_WS_PORT=str(ws))
            self.feed_urls.append((f"http://127.0.0.1:{rest}", f"ws://127.0.0.1:{ws}"))
        port = free_port()
        feeds = ",".join(f"127.0.0.1:{r.rsplit(':', 1)[1]}/{w.rsplit(':', 1)[1]}" for r, w in self.feed_urls)
        self._add("frontdoor", "frontdoor", "front door on", MERCURY_FRONTDOOR_PORT=str(port),
                  MERCURY_FRONTDOOR_STATE_DIR=str(self.dir / "frontdoor"),
                  MERCURY_FRONTDOOR_GATEWAYS=",".join(self.gateway_urls), MERCURY_FRONTDOOR_FEEDS=feeds)  # fmt: skip
        for name, service in self.services.items():
            if name not in ("sequencer", "engine"):
                say(f"starting {name}")
                service.start()
        wait_for(lambda: _answers(port), 15, "the front door")
        self.url = f"http://127.0.0.1:{port}"
        say(f"venue up in {time.monotonic() - t0:.0f} s: front door {self.url}")
        return self

    def _add(self, name: str, module: str, ready: str, **env: str) -> None:
        self.services[name] = Service(module, dict(self.venue.env, **env), self.dir / f"{name}.log", ready)

    def processes(self) -> dict[str, Watched]:
        """Every process of the venue for CPU accounting, by the Procfile's names."""
        out: dict[str, Watched] = {}
        for name, service in self.services.items():
            if service.proc is not None:
                out[name] = Watched(service.proc.pid, tree=name == "frontdoor")  # nginx: master + worker
        for name, proc, tree in (("redis", self.venue.redis.proc, True), ("postgres", self.postgres.proc, True),
                                 ("ferretdb", self.mongo.proc, False)):  # fmt: skip
            if proc is not None:
                out[name] = Watched(proc.pid, tree)
        return out

    def logs_with(self, *words: str) -> list[str]:
        """Lines of the services' logs holding any of ``words`` (warnings and errors, for the report), each
        traceback as its last line: the exception."""
        out = []
        for name, s in self.services.items():
            lines = s.log().splitlines()
            for i, line in enumerate(lines):
                if line.startswith("Traceback"):
                    j = i + 1
                    while j < len(lines) and (lines[j][:1] in (" ", "\t") or not lines[j].strip()):
                        j += 1
                    if j < len(lines):
                        out.append(f"{name}:   {lines[j]}")
                elif any(w in line for w in words):
                    out.append(f"{name}: {line}")
        return out

    def stop(self) -> None:
        order = ["frontdoor", "feed-a", "feed-b", "http-a", "http-b", "mongo-persister", "pg-persister"]
        for name in order:
            service = self.services.get(name)
            if service is not None and service.alive():
                try:
                    service.stop()
                except Exception:  # a process that ignores SIGTERM must not keep the others running
                    if service.proc is not None:
                        service.proc.kill()
        self.venue.stop()
        self.mongo.stop()
        self.postgres.stop()
