"""Fixtures that start real servers. Engine-only fixtures live in tests/engine/conftest.py."""

from __future__ import annotations

import itertools
import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.harness import MongoServer, PostgresServer, RedisServer, Venue

_databases = itertools.count(1)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL cluster for the whole test session (initdb takes seconds); tests get a database each."""
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database of the session's PostgreSQL."""
    return postgres_server.create_database(f"test_{next(_databases)}")


@pytest.fixture
def venue(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Venue]:
    """Redis + sequencer + engine, started; their logs are printed if the test fails."""
    v = Venue(tmp_path)
    v.start()
    yield v
    v.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(v.logs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


@pytest.fixture(scope="session")
def mongo_server(request: pytest.FixtureRequest) -> Iterator[MongoServer]:
    """The session's MongoDB-protocol server: FerretDB over a database of the session's PostgreSQL, or the real
    MongoDB that MERCURY_MONGODB_URL names (then nothing is started, and no PostgreSQL for it)."""
    external = os.environ.get("MERCURY_MONGODB_URL") or None
    postgres = None if external else request.getfixturevalue("postgres_server")
    server = MongoServer(postgres, external)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mongo_url(mongo_server: MongoServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a new database on the session's MongoDB-protocol server (a name no test used, this process's id
    in it for a shared real MongoDB, where it is dropped afterwards); FerretDB's log of the test if it fails."""
    name = f"test_{next(_databases)}_{os.getpid()}"
    offset = mongo_server.log_size()
    yield mongo_server.url(name)
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and not mongo_server.external:
        print(f"--- FerretDB ({mongo_server.log_path}) ---\n{mongo_server.log(offset)}")
    if mongo_server.external:
        mongo_server.drop_database(name)
