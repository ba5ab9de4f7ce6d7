"""Real processes for pipeline tests: a redis-server with AOF on, the sequencer and the engine, on private ports.

Nothing here is a fake: each test gets its own redis-server (free port, its own data dir) and the real
``python -m sequencer`` / ``python -m engine`` processes, talking over ipc sockets in the test's directory. Tests
can kill -9 and restart any of them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pymongo
import redis
import zmq

from client.sequencer import SequencerClient
from engine.events_stream import last_out_seq
from persistence import cluster, mongo_server
from wire import keys
from wire.codec import decode_heartbeat
from wire.commands import Command
from wire.config import Settings, load_settings
from wire.enums import AckStatus
from wire.venue import DEFAULT_VENUE, load_venue

ROOT = Path(__file__).resolve().parent.parent
FUNDING = 10**16  # units of each asset Venue.fund credits: 10**8 BTC or USDT at 8 decimals, far above any test's need


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def read_log(path: Path, offset: int = 0) -> str:
    """A process's log file from ``offset`` on ('' while it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


class RedisServer:
    def __init__(self, directory: Path, fsync: str = "everysec") -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.fsync = fsync
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=5)

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        args += ["--appendonly", "yes", "--appendfsync", self.fsync, "--save", ""]
        log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        r = self.client()

        def answers() -> bool:
            try:
                return bool(r.ping())
            except redis.ConnectionError:
                return False

        wait_for(answers, 10, "redis-server to answer")
        r.close()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class PostgresServer:
    """A throw-away PostgreSQL cluster (persistence.cluster) on a free port, in a directory of its own under /tmp
    (pytest's tmp_path is private to root, and the server runs as the postgres user when we are root)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mercury-pg-"))
        self.dir.chmod(0o755)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, database: str = cluster.SUPERUSER) -> str:
        return cluster.url(self.port, database)

    def start(self) -> None:
        data = self.dir / "data"
        if not (data / "PG_VERSION").exists():
            cluster.init(data)
        log = open(self.dir / "postgres.log", "ab")
        self.proc = subprocess.Popen(
            cluster.server_command(data, self.port, self.dir / "sock"),
            stdout=log,
            stderr=subprocess.STDOUT,
            **cluster.owner(),
        )
        log.close()
        ready = [cluster.server_binary("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        wait_for(lambda: subprocess.run(ready, check=False).returncode == 0, 30, "PostgreSQL to accept connections")

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""

        async def create() -> None:
            conn = await asyncpg.connect(self.url())
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())
        return self.url(name)

    def stop_server(self) -> None:
        """Stop the server (a fast shutdown) and keep its data: ``start`` brings the same cluster back."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(30)
            self.proc = None

    def stop(self) -> None:
        self.stop_server()
        shutil.rmtree(self.dir, ignore_errors=True)


class Service:
    """A Mercury process (``python -m <module>``) with its log in the test directory."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path, ready_line: str) -> None:
        self.module = module
        self.env = env
        self.log_path = log_path
        self.ready_line = ready_line
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module], env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        if wait:
            wait_for(lambda: self.ready_line in self.log(offset) or not self.alive(), 30, f"{self.module} to start")
            if not self.alive():
                raise RuntimeError(f"{self.module} exited at start:\n{self.log()}")

    def log(self, offset: int = 0) -> str:
        return read_log(self.log_path, offset)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> int:
        """SIGTERM (a clean stop) and the exit code."""
        if self.proc is None:
            return 0
        self.proc.terminate()
        code = self.proc.wait(20)
        self.proc = None
        return code


class Venue:
    """One shard: Redis, sequencer and engine, wired together through the environment like the Procfile does."""

    def __init__(self, directory: Path, fsync: str = "everysec", **settings: str) -> None:
        self.dir = directory
        self.redis = RedisServer(directory / "redis", fsync)
        sock = directory / "sock"
        sock.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ)
        self.env.update(
            {
                "MERCURY_REDIS_URL": self.redis.url,
                "MERCURY_SEQUENCER_ENDPOINT": f"ipc://{sock}/sequencer",
                "MERCURY_JOURNAL_PUB_ENDPOINT": f"ipc://{sock}/journal",
                "MERCURY_EVENTS_PUB_ENDPOINT": f"ipc://{sock}/events",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env.update({"MERCURY_" + k.upper(): v for k, v in settings.items()})
        self.settings: Settings = load_settings(self.env)
        self.shard = "e0"
        self.sequencer = Service("sequencer", self.env, directory / "sequencer.log", "sequencer on")
        self.engine = Service("engine", self.env, directory / "engine.log", "engine matching on core")
        self._clients: list[SequencerClient] = []
        self.funded = False  # fund() was called

    def start(self) -> Venue:
        self.redis.start()
        self.sequencer.start()
        self.engine.start()
        return self

    def stop(self) -> None:
        for c in self._clients:
            c.close()
        for service in (self.engine, self.sequencer):
            if service.alive():
                service.stop()
        self.redis.stop()

    def client(self, name: str = "test", timeout: float = 2.0) -> SequencerClient:
        c = SequencerClient(self.settings, name=name, timeout=timeout)
        self._clients.append(c)
        return c

    def r(self) -> redis.Redis:
        return self.redis.client()

    def fund(self, *accounts: int, units: int = FUNDING) -> int:
        """Create ``accounts`` and credit each ``units`` of every asset; returns the last in_seq. The commands are
        pipelined (sent in chunks, then their acknowledgements read), so that thousands of accounts take seconds."""
        c = self.client("funding")
        self.funded = True
        assets = load_venue(self.settings.venue_file or DEFAULT_VENUE).assets
        cmds: list[Command] = []
        for account in accounts:
            cmds.append(c.create_account(account))
            cmds += [c.deposit(account, asset.name, units) for asset in assets]
        last = 0
        for i in range(0, len(cmds), 512):
            chunk = cmds[i : i + 512]
            for cmd in chunk:
                c.send(cmd)
            for _ in chunk:
                ack = c.recv_ack()
                assert ack.status is AckStatus.JOURNALED, ack
                last = max(last, ack.in_seq)
        return last

    def stored_out_seq(self) -> int:
        r = self.r()
        try:
            return last_out_seq(r, keys.events(self.shard))
        finally:
            r.close()

    def wait_engine(self, in_seq: int, timeout: float = 15) -> None:
        """Until the engine's heartbeat says it published everything caused by commands up to ``in_seq``."""
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"h/")
        sub.connect(self.settings.events_pub_endpoint)
        seen = [0]

        def reached() -> bool:
            while sub.poll(20):
                seen[0] = max(seen[0], decode_heartbeat(sub.recv_multipart()[1]).in_seq)
            return seen[0] >= in_seq

        try:
            wait_for(reached, timeout, f"the engine to reach in_seq {in_seq} (at {seen[0]})")
        finally:
            sub.close(0)
            ctx.term()

    def logs(self) -> str:
        return f"--- sequencer ---\n{self.sequencer.log()}\n--- engine ---\n{self.engine.log()}"


class MongoServer:
    """The tests' MongoDB-protocol server: FerretDB (persistence.mongo_server's binary, built when a source is newer)
    on a free port, keeping its data in a database of the session's PostgreSQL (PostgresServer); or, when
    ``external`` (MERCURY_MONGODB_URL) names a real MongoDB, that server, and nothing is started. FerretDB's log
    (warn level: every failed command with its message) is in its own directory under /tmp. ``pool_max_conns``
    replaces the size of FerretDB's pool of PostgreSQL connections (50, persistence/ferretdb/main.go)."""

    def __init__(
        self,
        postgres: PostgresServer | None,
        external: str | None = None,
        database: str = "ferretdb",
        pool_max_conns: int | None = None,
    ) -> None:
        self.postgres = postgres
        self.pool_max_conns = pool_max_conns
        self.external = external
        self.database = database  # FerretDB's PostgreSQL database
        self.dir = Path(tempfile.mkdtemp(prefix="mercury-mongo-"))
        self.log_path = self.dir / "ferretdb.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.pg_url: str | None = None  # FerretDB's database, once created

    def url(self, database: str) -> str:
        """The URL of ``database`` on this server (on the external one with its options kept)."""
        if self.external:
            return mongo_server.with_database(self.external, database)
        return f"mongodb://127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if self.external:
            return
        if self.postgres is None:
            raise ValueError("FerretDB needs a PostgresServer (or an external MongoDB)")
        mongo_server.build()
        if self.pg_url is None:  # a restart (after stop_server) keeps its data
            self.pg_url = self.postgres.create_database(self.database)
        pg_url = self.pg_url
        if self.pool_max_conns is not None:
            pg_url += f"?pool_max_conns={self.pool_max_conns}"
        offset = self.log_size()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            mongo_server.command(self.port, pg_url, log_level="warn"), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        wait_for(lambda: mongo_server.READY in self.log(offset) or not self.alive(), 30, "FerretDB to listen")
        if not self.alive():
            raise RuntimeError(f"FerretDB exited at start:\n{self.log(offset)}")

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log(self, offset: int = 0) -> str:
        return read_log(self.log_path, offset)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def drop_database(self, database: str) -> None:
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            self.url(database), serverSelectionTimeoutMS=5000, socketTimeoutMS=30000
        )
        with client:
            client.drop_database(database)

    def stop_server(self) -> None:
        """Stop FerretDB and keep its data (in PostgreSQL) and log: ``start`` serves the same data again."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:  # a wedged FerretDB may wait for its stuck commands forever
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        self.stop_server()
        shutil.rmtree(self.dir, ignore_errors=True)
