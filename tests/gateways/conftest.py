"""A running exchange for the gateway tests: the venue, the PostgreSQL persister, two funded accounts with HMAC
keys, and the HTTP gateway process on a free port."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from persistence.apikeys import ENV_KEY, ApiKeyRefused, SecretCipher, add_ed25519, create_hmac
from tests.harness import PostgresServer, Service, Venue, free_port, wait_for
from tests.persistence.test_postgres_persister import persister, wait_caught_up

UNITS = 10**12  # of each asset per account: 10,000 BTC and 10,000 USDT at 8 decimals


@dataclass
class Exchange:
    venue: Venue
    pg_url: str
    url: str  # http://127.0.0.1:<port>
    keys: dict[int, tuple[str, str]]  # account -> (key id, secret)
    gateway: Service


def _keys(pg_url: str, cipher: SecretCipher, accounts: list[int]) -> dict[int, tuple[str, str]]:
    async def make() -> dict[int, tuple[str, str]]:
        conn = await asyncpg.connect(pg_url)
        try:
            return {a: await create_hmac(conn, cipher, a, "test") for a in accounts}
        finally:
            await conn.close()

    return asyncio.run(make())


def ed25519_key(exchange: Exchange, account: int, label: str) -> tuple[str, Ed25519PrivateKey]:
    """A new Ed25519 key of ``account`` (the server stores its public half): its id and its private key."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    async def register() -> str:
        conn = await asyncpg.connect(exchange.pg_url)
        try:
            return await add_ed25519(conn, account, public, label)
        finally:
            await conn.close()

    return asyncio.run(register()), private


def answers_ping(url: str) -> bool:
    """Whether the gateway at ``url`` answers (False while it refuses connections)."""
    try:
        with urllib.request.urlopen(url + "/api/v3/ping", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


_databases = itertools.count(1)


@contextlib.contextmanager
def running_exchange(directory: Path, postgres_server: PostgresServer, venue_settings: dict[str, str] | None = None,
                     gateway_env: dict[str, str] | None = None) -> Iterator[Exchange]:  # fmt: skip
    venue = Venue(directory, **(venue_settings or {}))
    venue.start()
    pg_url = postgres_server.create_database(f"gateway_{next(_databases)}_{os.getpid()}")
    pg = persister(venue, pg_url)
    gateway: Service | None = None
    try:
        venue.fund(1, 2, 3, units=UNITS)
        pg.start()
        wait_caught_up(venue, pg_url)
        kek = base64.b64encode(os.urandom(32)).decode()
        keys = _keys(pg_url, SecretCipher(base64.b64decode(kek)), [1, 2, 3])
        port = free_port()
        env = dict(venue.env, MERCURY_POSTGRES_URL=pg_url, MERCURY_HTTP_PORT=str(port), **{ENV_KEY: kek})
        env.update(gateway_env or {})
        gateway = Service("gateways.http", env, venue.dir / "gateway.log", "gateway ready")
        gateway.start()
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers_ping(url), 15, "the gateway to answer")
        yield Exchange(venue, pg_url, url, keys, gateway)
    finally:
        if gateway is not None:
            gateway.stop()
            if "ERROR" in gateway.log():
                print(f"--- gateway ---\n{gateway.log()}")
        pg.stop()
        venue.stop()


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer) -> Iterator[Exchange]:
    """One exchange per test module (starting one takes seconds): the module's tests share its accounts."""
    with running_exchange(tmp_path_factory.mktemp("exchange"), postgres_server) as ex:
        yield ex


def new_account_key(exchange: Exchange, account: int, usdt_units: int, label: str) -> tuple[str, Ed25519PrivateKey]:
    """A new account holding ``usdt_units`` of USDT only, and an Ed25519 key of it (made through the sequencer, as
    an operator does: python -m client.admin)."""
    client = exchange.venue.client(label)
    client.submit(client.create_account(account))
    client.submit(client.deposit(account, "USDT", usdt_units))
    deadline = time.monotonic() + 10
    while True:  # the PostgreSQL persister stores the new account a moment after the engine applied it
        try:
            return ed25519_key(exchange, account, label)
        except ApiKeyRefused:
            assert time.monotonic() < deadline
            time.sleep(0.1)
