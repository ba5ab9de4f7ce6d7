"""``python -m frontdoor``: nginx in the foreground with the front door's configuration (frontdoor/nginx.py), on
MERCURY_FRONTDOOR_PORT (8080 under ``./mercury start``)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from frontdoor.nginx import render
from wire.config import load_settings


def main() -> int:  # returns only on an error: otherwise nginx replaces this process
    settings = load_settings()
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        print("error: nginx is not installed (Debian: apt-get install nginx; ./mercury start installs it)",
              file=sys.stderr)  # fmt: skip
        return 2
    state = Path(settings.frontdoor_state_dir).resolve()
    for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    conf = state / "nginx.conf"
    conf.write_text(render(settings, state))
    print(f"front door on http://{settings.frontdoor_host}:{settings.frontdoor_port}", flush=True)
    # exec: nginx becomes this process, so the supervisor's signals reach it directly (TERM: fast stop)
    os.execv(nginx, [nginx, "-p", str(state), "-c", str(conf), "-e", str(state / "error.log"), "-g", "daemon off;"])


if __name__ == "__main__":
    sys.exit(main())
