"""Schema migrations against a real PostgreSQL: applied once and in order, recorded, refused when the files and
the database disagree, safe when two runners start at once; the command's output and exit codes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from persistence.migrate import Migration, MigrationError, load, main, migrate


def run_migrate(url: str, migrations: list[Migration] | None = None) -> list[Migration]:
    async def go() -> list[Migration]:
        conn = await asyncpg.connect(url)
        try:
            return await migrate(conn, migrations)
        finally:
            await conn.close()

    return asyncio.run(go())


def fetch(url: str, query: str) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(query)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_repository_migrations_apply_once_in_order_and_are_recorded(pg_url: str) -> None:
    files = load()
    assert [m.version for m in files] == list(range(1, len(files) + 1))
    assert run_migrate(pg_url) == files
    assert run_migrate(pg_url) == []  # up to date: nothing again
    rows = fetch(pg_url, "SELECT version, name, sha256 FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"], r["sha256"]) for r in rows] == [(m.version, m.name, m.sha256) for m in files]
    tables = {r["tablename"] for r in fetch(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"consumer_offsets", "quarantine", "accounts", "api_keys", "schema_migrations"} <= tables


def test_migration_changed_after_it_was_applied_is_refused(pg_url: str) -> None:
    first = [Migration(1, "one", "CREATE TABLE one (x int);")]
    run_migrate(pg_url, first)
    edited = [Migration(1, "one", "CREATE TABLE one (x bigint);"), Migration(2, "two", "CREATE TABLE two (x int);")]
    with pytest.raises(MigrationError, match=r"0001_one\.sql changed after it was applied"):
        run_migrate(pg_url, edited)
    tables = {r["tablename"] for r in fetch(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert "two" not in tables  # refused before anything was applied


def test_database_newer_than_the_code_is_refused(pg_url: str) -> None:
    run_migrate(pg_url, [Migration(1, "one", "SELECT 1;"), Migration(2, "two", "SELECT 2;")])
    with pytest.raises(MigrationError, match="has migration 0002_two, which this code does not"):
        run_migrate(pg_url, [Migration(1, "one", "SELECT 1;")])


def test_failing_migration_applies_nothing_of_its_batch(pg_url: str) -> None:
    batch = [Migration(1, "good", "CREATE TABLE good (x int);"), Migration(2, "bad", "CREATE TABLE bad (x nope);")]
    with pytest.raises(asyncpg.PostgresError):
        run_migrate(pg_url, batch)
    tables = {r["tablename"] for r in fetch(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert "good" not in tables and "schema_migrations" not in tables  # one transaction: all or nothing


def test_two_runners_at_once_apply_each_migration_once(pg_url: str) -> None:
    files = [Migration(1, "slow", "SELECT pg_sleep(0.3); CREATE TABLE slow (x int);")]

    async def both() -> list[list[Migration]]:
        conns = [await asyncpg.connect(pg_url) for _ in range(2)]
        try:
            return list(await asyncio.gather(*(migrate(c, files) for c in conns)))
        finally:
            for c in conns:
                await c.close()

    results = asyncio.run(both())
    assert sorted(len(r) for r in results) == [0, 1]  # one applied it, the other found it applied


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["0001_a.sql", "0003_c.sql"], "migration 0002 is missing"),
        (["0001_a.sql", "1_b.sql"], "1_b.sql: a migration is named NNNN_lower_case_name.sql"),
        (["0001_A.sql"], "0001_A.sql: a migration is named"),
    ],
)
def test_load_refuses_bad_file_names_and_gaps(tmp_path: Path, names: list[str], message: str) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=message):
        load(tmp_path)


def test_command_applies_then_reports_up_to_date(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", pg_url]) == 0
    last = load()[-1]
    assert f"applied 0001_{load()[0].name}" in capsys.readouterr().out
    assert main(["--url", pg_url]) == 0
    assert capsys.readouterr().out.strip() == f"schema up to date at {last.version:04d}"


def test_command_when_postgres_is_down_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "postgresql://mercury@127.0.0.1:1/mercury"]) == 2
    assert "cannot reach PostgreSQL at postgresql://mercury@127.0.0.1:1/mercury" in capsys.readouterr().err
