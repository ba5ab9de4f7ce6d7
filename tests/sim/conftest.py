"""A whole venue for the simulator, assembled as ``./mercury start`` runs it, on free ports: the engine and its
pipeline, the PostgreSQL and MongoDB persisters, an HTTP gateway, a market-data feed, the front door in front of
them, and the FIX gateway."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.feeds.conftest import feed_service
from tests.frontdoor.test_frontdoor import _answers
from tests.gateways.conftest import Exchange, running_exchange
from tests.gateways.fix_support import fix_gateway
from tests.harness import ROOT, PostgresServer, Service, free_port, wait_for


@dataclass
class SimVenue:
    exchange: Exchange  # its url is the gateway's own
    url: str  # the front door: REST, market data, both WebSocket APIs
    fix_port: int
    env: dict[str, str]  # what the simulator runs with: the venue's settings, the key-encryption key
    feed: Service

    def sim(self, state: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``python -m sim`` against this venue, to its end."""
        return subprocess.run([sys.executable, "-m", "sim", *self.argv(state), *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip

    def argv(self, state: Path) -> list[str]:
        return ["--url", self.url, "--fix-port", str(self.fix_port), "--state-dir", str(state)]


@pytest.fixture(scope="module")
def sim_venue(tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer,
              mongo_server: Any) -> Iterator[SimVenue]:  # fmt: skip
    directory = tmp_path_factory.mktemp("sim-venue")
    with running_exchange(directory, postgres_server) as ex:
        mongo_url = mongo_server.url(f"sim_{os.getpid()}")
        persister = Service("persistence.mongo", dict(ex.venue.env, MERCURY_MONGODB_URL=mongo_url),
                            directory / "mongo-persister.log", "mongo persister at out_seq")  # fmt: skip
        feed, rest, ws = feed_service(ex.venue, mongo_url)
        fix, fix_port = fix_gateway(ex, directory / "fix")
        door: Service | None = None
        started: list[Service] = []
        try:
            for service in (persister, feed, fix):
                service.start()
                started.append(service)
            port = free_port()
            feeds = f"127.0.0.1:{rest.rsplit(':', 1)[1]}/{ws.rsplit(':', 1)[1]}"
            env = dict(ex.venue.env, MERCURY_FRONTDOOR_PORT=str(port), MERCURY_FRONTDOOR_FEEDS=feeds,
                       MERCURY_FRONTDOOR_STATE_DIR=str(directory / "frontdoor"),
                       MERCURY_FRONTDOOR_GATEWAYS=ex.url.removeprefix("http://"))  # fmt: skip
            door = Service("frontdoor", env, directory / "frontdoor.log", "front door on")
            door.start()
            wait_for(lambda: _answers(port), 15, "the front door")
            yield SimVenue(dataclasses.replace(ex), f"http://127.0.0.1:{port}", fix_port, dict(ex.gateway.env), feed)
        finally:
            for service in [*([door] if door else []), *reversed(started), feed]:
                if service.alive():
                    service.stop()
            for service in (fix, feed, ex.gateway):
                if "Traceback" in service.log():
                    print(f"--- {service.module} ---\n{service.log()[-10_000:]}")
