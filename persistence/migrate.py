"""Schema migrations: the numbered SQL files in ``persistence/migrations``, applied in order, each exactly once.

    python -m persistence.migrate          # apply what is pending to MERCURY_POSTGRES_URL, print what it did

A file is ``NNNN_name.sql``; versions run from 0001 without a gap. ``schema_migrations`` records each applied
version with the SHA-256 of its file. Every run:

- takes a transaction-scoped advisory lock, so that two processes starting at once (two persisters, say) apply
  the pending files once, one after the other;
- refuses to go on if an applied file has changed since, or if the database holds a version this code does not
  have (it is newer than the code): both mean the code and the database disagree about the schema;
- applies every pending file and records it in one transaction (PostgreSQL's DDL is transactional): all or
  nothing.

Exit codes of the command: 0 up to date, 1 refused (the reason is printed), 2 PostgreSQL cannot be reached.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from persistence.db import connect, run_command
from wire.config import load_settings
from wire.errors import MercuryError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCK_KEY = 0x6D65_7263_7572_79  # "mercury": the advisory lock every migration run takes

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    sha256     text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(MercuryError):
    """The migration files or the database's record of them are inconsistent; nothing was applied."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(directory: Path = MIGRATIONS) -> list[Migration]:
    """The migration files in version order; raises MigrationError on a stray name, a duplicate or a gap."""
    found: list[Migration] = []
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql":
            continue
        match = FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: a migration is named NNNN_lower_case_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    for expected, m in enumerate(found, start=1):
        if m.version != expected:
            raise MigrationError(f"migration {expected:04d} is missing (next file: {m.version:04d}_{m.name}.sql)")
    return found


async def migrate(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Apply the pending migrations; returns those applied now (none when the schema is up to date)."""
    wanted = load() if migrations is None else migrations
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        await conn.execute(CREATE_TABLE)
        rows = await conn.fetch("SELECT version, name, sha256 FROM schema_migrations ORDER BY version")
        by_version = {m.version: m for m in wanted}
        for row in rows:
            m = by_version.get(row["version"])
            if m is None:
                raise MigrationError(
                    f"the database has migration {row['version']:04d}_{row['name']}, which this code does not:"
                    " the database is newer than the code"
                )
            if m.sha256 != row["sha256"]:
                raise MigrationError(
                    f"migration {m.version:04d}_{m.name}.sql changed after it was applied: add a new migration"
                    " instead of editing an applied one"
                )
        done = {row["version"] for row in rows}
        pending = [m for m in wanted if m.version not in done]
        for m in pending:
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)", m.version, m.name, m.sha256
            )
    return pending


async def _run(url: str) -> str:
    conn = await connect(url)
    try:
        applied = await migrate(conn)
        version = await conn.fetchval("SELECT max(version) FROM schema_migrations")
    finally:
        await conn.close()
    if not applied:
        return f"schema up to date at {version:04d}"
    return "applied " + ", ".join(f"{m.version:04d}_{m.name}" for m in applied) + f"; schema at {version:04d}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m persistence.migrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="PostgreSQL URL (default: MERCURY_POSTGRES_URL)")
    args = parser.parse_args(argv)
    return run_command(_run(args.url or load_settings().postgres_url), refused=(MigrationError,), unavailable=())


if __name__ == "__main__":
    sys.exit(main())
