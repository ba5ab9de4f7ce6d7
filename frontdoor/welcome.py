"""``python -m frontdoor.welcome``: what ``./mercury start`` shows a new user once the venue is up.

The first time, it creates a funded demo account and an API key for it (kept in the front door's state directory,
readable only by its owner); every time, it prints where the exchange is and how to sign in. It then waits with the
other processes, since the supervisor stops everything when one process ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from client.admin import AdminError, run
from gateways.fix.config import load_fix_config
from persistence.apikeys import EncryptionKeyMissing, SecretCipher, hmac_once_stored
from wire.config import Settings, load_settings
from wire.venue import DEFAULT_VENUE, load_venue

DEMO_ACCOUNT = 1000
FUNDS = (("USDT", "100000"), ("BTC", "2"), ("ETH", "30"))
WAIT = 120.0  # s the services may take to come up


def _admin(argv: list[str], settings: Settings) -> str:
    """An admin command, retried while the venue is still starting."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            return run(argv, settings)
        except AdminError as exc:
            if exc.code == 1 or time.monotonic() > deadline:  # 1: the engine refused it; 2: not reachable yet
                raise
            time.sleep(1)


def demo_account(settings: Settings, cipher: SecretCipher, state: Path) -> dict[str, str]:
    saved = state / "demo-key.json"
    if saved.exists():
        return dict(json.loads(saved.read_text()))
    try:
        _admin(["create-account", str(DEMO_ACCOUNT)], settings)
    except AdminError as exc:
        if exc.code != 1:
            raise
        # the account exists (its key file was removed): a new key for it, no new money
    else:
        for asset, amount in FUNDS:
            _admin(["deposit", str(DEMO_ACCOUNT), asset, amount], settings)
    key, secret = asyncio.run(
        hmac_once_stored(settings.postgres_url, cipher, DEMO_ACCOUNT, "demo", time.monotonic() + WAIT)
    )
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"account": str(DEMO_ACCOUNT), "key": key, "secret": secret}, f)
    return {"account": str(DEMO_ACCOUNT), "key": key, "secret": secret}


def door_ready(settings: Settings) -> str:
    """Until the front door answers for a gateway (ping) and a feed (a book): the banner promises a working URL.
    Returns what is still not answering when WAIT runs out ('' once both answer)."""
    url = f"http://{settings.frontdoor_host}:{settings.frontdoor_port}"
    paths = [
        "/api/v3/ping",
        "/api/v3/depth?symbol=" + load_venue(settings.venue_file or DEFAULT_VENUE).symbols[0].symbol,
    ]
    deadline = time.monotonic() + WAIT
    while True:
        failing = []
        for path in paths:
            try:
                with urllib.request.urlopen(url + path, timeout=5) as response:
                    response.read()
            except (OSError, urllib.error.HTTPError) as exc:  # not listening yet, or 502 while its upstream starts
                failing.append(f"{url}{path}: {exc}")
        if not failing or time.monotonic() > deadline:
            return "; ".join(failing)
        time.sleep(0.5)


def banner(settings: Settings, demo: dict[str, str]) -> str:
    url = f"http://{settings.frontdoor_host}:{settings.frontdoor_port}"
    ws = url.replace("http://", "ws://")
    funds = ", ".join(f"{amount} {asset}" for asset, amount in FUNDS)
    fix_port = settings.fix_port or load_fix_config(settings.fix_config_file or None).port
    return f"""
  Mercury is up.
    trading UI        {url}/ui/
    REST + streams    {url}/api/v3   {ws}/ws   (Binance's API; docs/api.md)
    FIX 4.4           {settings.fix_host}:{fix_port}, TargetCompID MERCURY (docs/fix.md)
  Sign in with the demo account {demo["account"]} (funded with {funds} when it was created):
    API key           {demo["key"]}
    secret            {demo["secret"]}
  Ctrl-C stops everything; the next start resumes from the journal and the databases.
"""


def main() -> int:
    settings = load_settings()
    try:
        cipher = SecretCipher.from_env()
    except EncryptionKeyMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        demo = demo_account(settings, cipher, Path(settings.frontdoor_state_dir))
    except Exception as exc:  # never end here: the supervisor would stop the whole venue with it
        print(f"error: the demo account could not be set up: {exc}", file=sys.stderr)
        demo = {"account": "-", "key": "(none: see the error above)", "secret": "-"}
    if "--skip-door-check" not in sys.argv:
        failing = door_ready(settings)
        if failing:
            print(f"warning: the front door does not answer yet: {failing}", file=sys.stderr, flush=True)
    print(banner(settings, demo), flush=True)
    if "--once" not in sys.argv:
        signal.pause()  # with the others: the supervisor ends everything when one process ends
    return 0


if __name__ == "__main__":
    sys.exit(main())
