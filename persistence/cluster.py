"""A PostgreSQL cluster owned by the project: Debian's server binaries, a data directory we choose, our own port.

Used by ``bin/postgres-local`` (the Procfile's PostgreSQL, data in ``var/postgres``) and by the tests (one
throw-away cluster per test session). PostgreSQL refuses to run as root, so when we are root the server and
initdb run as the ``postgres`` user that Debian's package creates, and the data directory is given to it.

The cluster trusts local connections (loopback and its own socket directory): it is a development and test
server bound to 127.0.0.1, never a production one.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from wire.errors import MercuryError

SUPERUSER = "mercury"


class ClusterError(MercuryError):
    pass


def server_binary(name: str) -> str:
    """``initdb``, ``postgres``, ``pg_isready``: on PATH, else from the newest /usr/lib/postgresql/<v>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key)
    if not candidates:
        raise ClusterError(f"{name} not found: install Debian's postgresql package")
    return candidates[-1]


def _version_key(path: str) -> int:
    try:
        return int(Path(path).parent.parent.name)
    except ValueError:
        return 0


def owner() -> dict[str, Any]:
    """subprocess arguments that run a command as the postgres user when we are root (PostgreSQL will not run
    as root). The process itself changes user (no runuser in between), so signals reach the server directly."""
    if os.getuid() == 0:
        return {"user": "postgres", "group": "postgres", "extra_groups": []}
    return {}


def give_to_owner(path: Path) -> None:
    if os.getuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def init(data: Path, database: str = SUPERUSER) -> None:
    """Create the cluster in ``data`` (which must not hold one) with the superuser ``mercury`` and ``database``."""
    data.mkdir(parents=True, exist_ok=True)
    give_to_owner(data)
    os.chmod(data, 0o700)
    initdb = [server_binary("initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8"]
    result = subprocess.run([*initdb, "--no-instructions"], check=False, capture_output=True, text=True, **owner())
    if result.returncode != 0:
        raise ClusterError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")
    # the database, created in single-user mode: no server, no port, nothing to wait for
    single = [server_binary("postgres"), "--single", "-D", str(data), "postgres"]
    create = f"CREATE DATABASE {database};\n"
    result = subprocess.run(single, check=False, input=create, capture_output=True, text=True, **owner())
    if result.returncode != 0:
        raise ClusterError(f"creating database {database} failed: {result.stderr.strip()}")


def server_command(data: Path, port: int, sockets: Path) -> list[str]:
    """The foreground server command for ``data`` on 127.0.0.1:``port``, its socket in ``sockets`` (run it with
    ``owner()``)."""
    sockets.mkdir(parents=True, exist_ok=True)
    give_to_owner(sockets)
    postgres = [server_binary("postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets)]
    # max_connections: FerretDB alone may hold 50 (its pool, persistence/ferretdb/main.go), beside the persisters,
    # the gateways and, in the tests, many of each at once; PostgreSQL's default of 100 leaves too little room
    return [*postgres, "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]


def url(port: int, database: str = SUPERUSER) -> str:
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"
