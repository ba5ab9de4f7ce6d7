"""``python -m deploy.health URL``: exit 0 when URL answers 2xx within 2 s, else 1. The container health check of
docker-compose.yml: the image has Python but neither curl nor wget."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m deploy.health URL", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(0 if healthy(sys.argv[1]) else 1)
