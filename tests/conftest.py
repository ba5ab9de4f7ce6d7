"""Fixtures that start real servers. Engine-only fixtures live in tests/engine/conftest.py."""

from __future__ import annotations

import itertools
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.harness import PostgresServer, RedisServer, Venue

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
