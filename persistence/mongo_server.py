"""The MongoDB-protocol server of development and CI: FerretDB v1.24.2 over a database of the project's PostgreSQL.

``persistence/ferretdb/`` is a small Go program that embeds FerretDB with its PostgreSQL handler; ``build()``
compiles it into ``var/bin/mercury-ferretdb``. ``python -m persistence.mongo_server`` (bin/mongo-local, the
Procfile) creates the database ``ferretdb`` in the project's PostgreSQL (MERCURY_POSTGRES_URL) when it is missing,
builds the binary when a source is newer, waits for PostgreSQL and becomes the server, listening on the port of
MERCURY_MONGODB_URL. When MERCURY_MONGODB_URL is set in the environment it names a real MongoDB and nothing is
started. ``--build-only`` only builds (./mercury and CI do that before they start or test anything).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from persistence.stop_last import serve
from wire.config import load_settings
from wire.errors import MercuryError

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "persistence" / "ferretdb"
BINARY = ROOT / "var" / "bin" / "mercury-ferretdb"
DATABASE = "ferretdb"  # the PostgreSQL database FerretDB keeps its data in (one schema per MongoDB database)
READY = "FerretDB listening on"  # the binary's line once its port is bound

# The most ReplaceOne/UpdateOne operations to send in one bulk_write to FerretDB v1.24.2 (MongoDB itself has no
# such limit). FerretDB runs an `update` command's statements one after the other, and a statement that matches a
# document keeps the pooled PostgreSQL connection of its query until the whole command ends (the query's cursor is
# closed by a `defer` in the loop of internal/handler/msg_update.go). A statement that inserts (no match) releases
# it. The pool has 50 connections (pool_max_conns, persistence/ferretdb/main.go) shared by every client, and
# changing a matched document takes one more connection for its write. Measured against the test PostgreSQL, with
# ReplaceOne(upsert=True), ordered and unordered alike:
#   - 100 upserts that all insert: fine (2 connections in use);
#   - 49 that all replace a document with a different one: fine; 50: hangs (50 connections held);
#   - 50 that replace documents with identical ones (no write): fine; 51: hangs;
#   - two clients at once, 24 each: fine; 30 each: both hang.
# A hang never ends: the command waits for a connection it holds itself, closing the client's socket does not
# cancel it, and every later command needing PostgreSQL waits too until FerretDB is restarted. So a batch of n
# holds up to n + 1 connections, and the limit is (writers at once) x (n + 1) <= 50. 24 leaves room for two
# writers at once (a persister replaying after a restart replaces documents that already exist: the worst case).
SAFE_BULK_WRITE = 24


class MongoServerError(MercuryError):
    pass


def go_binary() -> str:
    """``go`` from PATH, else the official tarball's /usr/local/go/bin/go."""
    found = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    if found is None:
        raise MongoServerError(
            "go not found: building the MongoDB-protocol server (FerretDB, persistence/ferretdb) needs Go 1.24 or "
            "newer on PATH or in /usr/local/go (https://go.dev/dl/); or set MERCURY_MONGODB_URL to a real MongoDB"
        )
    return found


def needs_build() -> bool:
    """True when the binary is missing or older than one of its sources."""
    if not BINARY.exists():
        return True
    built = BINARY.stat().st_mtime
    return any((SOURCE / name).stat().st_mtime > built for name in ("main.go", "go.mod", "go.sum"))


def build(force: bool = False) -> Path:
    """Compile persistence/ferretdb into var/bin/mercury-ferretdb unless it is up to date; returns the binary.

    The module versions come from go.sum (go build never changes it). A cold module cache downloads FerretDB and
    its dependencies through the Go module proxy first; the build then takes one to two minutes.
    """
    if not force and not needs_build():
        return BINARY
    go = go_binary()
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    partial = BINARY.with_name(BINARY.name + ".partial")
    print(
        f"building the MongoDB-protocol server (FerretDB) into {BINARY.relative_to(ROOT)} with {go} "
        "(about a minute; the first build also downloads its Go modules)",
        flush=True,
    )
    started = time.monotonic()
    argv = [
        go,
        "build",
        "-trimpath",
        "-buildvcs=false",  # no git metadata: the build works outside a checkout and gives the same binary
        "-tags",
        "ferretdb_no_sqlite",  # only the PostgreSQL handler: smaller and quicker to build
        "-o",
        str(partial),
        ".",
    ]
    result = subprocess.run(argv, cwd=SOURCE, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise MongoServerError(f"building FerretDB failed ({' '.join(argv)}):\n{result.stderr.strip()}")
    partial.replace(BINARY)  # atomic: a concurrent start sees the old binary or the new one, never half of one
    print(f"built {BINARY.relative_to(ROOT)} in {time.monotonic() - started:.0f} s", flush=True)
    return BINARY


def command(listen_port: int, postgres_url: str, *, log_level: str = "error") -> list[str]:
    """The server's argv: listen on 127.0.0.1:``listen_port``, keep the data in the database ``postgres_url``
    names (it must exist). ``log_level`` warn also logs every failed command, with its whole message."""
    return [
        str(BINARY),
        "-listen",
        f"127.0.0.1:{listen_port}",
        "-postgresql-url",
        postgres_url,
        "-log-level",
        log_level,
    ]


def with_database(url: str, database: str) -> str:
    """``url`` (postgresql:// or mongodb://) naming ``database`` instead of its own; the query is kept."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def port_of(mongodb_url: str) -> int:
    """The port of a single-host mongodb:// URL (27017 when it has none)."""
    parts = urlsplit(mongodb_url)
    if parts.scheme != "mongodb" or "," in parts.netloc:
        raise MongoServerError(f"{mongodb_url!r} is not a mongodb:// URL of one host")
    return parts.port or 27017


async def ensure_database(postgres_url: str, database: str = DATABASE) -> bool:
    """Create ``database`` in the PostgreSQL of ``postgres_url`` unless it exists; True if it was created."""
    conn = await asyncpg.connect(postgres_url, timeout=5)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{database}"')
        except asyncpg.DuplicateDatabaseError:  # created meanwhile by another process
            return False
        return True
    finally:
        await conn.close()


async def wait_for_postgres(postgres_url: str, timeout: float = 60) -> None:
    """Until PostgreSQL accepts a connection (under honcho it may start at the same time as we do)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(postgres_url, timeout=2)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            if time.monotonic() > deadline:
                raise MongoServerError(f"PostgreSQL at {postgres_url} unreachable for {timeout:.0f} s: {exc}") from None
            await asyncio.sleep(0.5)
        else:
            await conn.close()
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m persistence.mongo_server", description="FerretDB, Mercury's MongoDB-protocol server"
    )
    parser.add_argument("--build-only", action="store_true", help="build var/bin/mercury-ferretdb if needed, and exit")
    args = parser.parse_args(argv)
    try:
        if args.build_only:
            build()
            return 0
        if os.environ.get("MERCURY_MONGODB_URL"):
            print("MERCURY_MONGODB_URL is set: not starting FerretDB", flush=True)
            try:
                while True:  # like bin/postgres-local: stay up, or honcho would stop the other processes
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
        settings = load_settings()
        port = port_of(settings.mongodb_url)
        build()
        asyncio.run(wait_for_postgres(settings.postgres_url))
        if asyncio.run(ensure_database(settings.postgres_url)):
            print(f"created the database {DATABASE} for FerretDB in {settings.postgres_url}", flush=True)
        argv_ = command(port, with_database(settings.postgres_url, DATABASE))
    except MercuryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return serve(argv_)  # FerretDB stops after its clients (persistence.stop_last)


if __name__ == "__main__":
    sys.exit(main())
