"""``python -m persistence.local``: the Procfile's PostgreSQL, a cluster owned by the project (bin/postgres-local).

Its data lives in ``var/postgres`` (created with the superuser and database ``mercury`` on first start), it listens
on 127.0.0.1:6543 (MERCURY_POSTGRES_PORT to change), and it runs in the foreground so that honcho stops it: a stop
request becomes a fast shutdown. As root, this process becomes the postgres user before it starts the server
(PostgreSQL refuses to run as root). The persisters apply the schema migrations when they start.
"""

from __future__ import annotations

import grp
import os
import pwd
import signal
import sys
from pathlib import Path

from persistence import cluster
from persistence.stop_last import serve

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "var" / "postgres"
SOCKETS = ROOT / "var" / "postgres-sockets"


def main() -> None:
    port = int(os.environ.get("MERCURY_POSTGRES_PORT", "6543"))
    if not (DATA / "PG_VERSION").exists():
        print(f"creating the project's PostgreSQL cluster in {DATA}", flush=True)
        cluster.init(DATA)
    argv = cluster.server_command(DATA, port, SOCKETS)
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(grp.getgrnam("postgres").gr_gid)
        os.setuid(pwd.getpwnam("postgres").pw_uid)
    print(f"PostgreSQL on 127.0.0.1:{port} ({cluster.url(port)})", flush=True)
    # after its clients, and as a fast shutdown: SIGTERM is PostgreSQL's smart shutdown, which waits for every
    # client (the gateways' pools) to leave, past the supervisor's grace (persistence.stop_last)
    sys.exit(serve(argv, signal.SIGINT))


if __name__ == "__main__":
    main()
