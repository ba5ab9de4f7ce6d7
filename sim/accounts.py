"""The bots' accounts: the one thing the simulator does as the exchange's operator rather than as a client.

Each account is created and funded with journaled admin commands (``client.admin``, as ``frontdoor.welcome`` does
for the demo account, retried while the venue starts) and given an HMAC API key once the PostgreSQL persister has
stored it. The keys are kept in the state directory (``accounts.json``, readable by its owner only), so the next
start trades from the same accounts and funds none of them again.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import asyncpg

from client.admin import AdminError, run
from persistence.apikeys import ApiKeyRefused, EncryptionKeyMissing, SecretCipher, hmac_once_stored
from sim.bots import unit_notional
from sim.grid import SymbolRules
from wire.config import Settings

FIRST_ACCOUNT = 2000  # the bots' accounts are numbered from here: clear of the demo account (1000)
STATE_FILE = "accounts.json"
# Each account gets, of each asset, this many size units (sim/bots.py) of every symbol the asset is in: 5,000
# against positions the bots keep within a few hundred, so no bot runs out however the market moves
FUND_UNITS = 5_000


class SetupError(Exception):
    """The accounts could not be set up: the message says why."""


@dataclass(frozen=True, slots=True)
class Credentials:
    account: int
    key: str
    secret: str


def funding(rules: dict[str, SymbolRules], prices: dict[str, Decimal]) -> dict[str, str]:
    """What each new account is given of each asset (whole units, as decimal strings for ``client.admin``)."""
    need: dict[str, Decimal] = {}
    for symbol, r in rules.items():
        price = prices[symbol]
        quote = unit_notional(r, price) * FUND_UNITS
        need[r.quote] = need.get(r.quote, Decimal(0)) + quote
        need[r.base] = need.get(r.base, Decimal(0)) + quote / price
    return {asset: str(max(1, math.ceil(amount))) for asset, amount in need.items()}


def load(state_dir: Path) -> dict[int, Credentials]:
    path = state_dir / STATE_FILE
    if not path.exists():
        return {}
    saved = json.loads(path.read_text())
    return {int(a): Credentials(int(a), c["key"], c["secret"]) for a, c in saved.get("accounts", {}).items()}


def save(state_dir: Path, credentials: dict[int, Credentials]) -> None:
    """Written whole to a new file readable only by its owner, then moved into place: a crash leaves the old one."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / STATE_FILE
    fresh = path.with_suffix(".tmp")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        ordered = sorted(credentials.values(), key=lambda c: c.account)
        json.dump({"accounts": {str(c.account): {"key": c.key, "secret": c.secret} for c in ordered}}, f, indent=1)
    os.replace(fresh, path)


async def _admin(argv: list[str], settings: Settings, deadline: float) -> bool:
    """An admin command, retried while the venue is not reachable; False when the engine refused it. Each attempt
    runs in a thread (client.admin blocks) and the waits between them on the loop, so a stop interrupts them."""
    while True:
        try:
            await asyncio.to_thread(run, argv, settings)
            return True
        except AdminError as exc:
            if exc.code == 1:  # the engine refused it (for create-account: the account exists)
                return False
            if time.monotonic() > deadline:
                raise SetupError(f"{' '.join(argv)}: {exc}") from None
        await asyncio.sleep(1)


async def _key(settings: Settings, cipher: SecretCipher, account: int, deadline: float) -> tuple[str, str]:
    """An HMAC key for the account, once the PostgreSQL persister has stored the account."""
    try:
        return await hmac_once_stored(settings.postgres_url, cipher, account, "sim", deadline)
    except (OSError, asyncpg.PostgresError, ApiKeyRefused) as exc:
        raise SetupError(f"no API key for account {account}: {exc}") from None


async def ensure(accounts: list[int], funds: dict[str, str], settings: Settings, state_dir: Path, wait: float,
                 say: Callable[[str], None]) -> dict[int, Credentials]:  # fmt: skip
    """Credentials for every account in ``accounts``: those the state directory has, and new ones for the others
    (created and funded unless the engine has the account already). Saved after each, so that an interrupted setup
    resumes where it stopped."""
    have = load(state_dir)
    missing = [a for a in accounts if a not in have]
    if missing:
        try:
            cipher = SecretCipher.from_env()
        except EncryptionKeyMissing as exc:
            raise SetupError(str(exc)) from None
        deadline = time.monotonic() + wait
        for account in missing:
            created = await _admin(["create-account", str(account)], settings, deadline)
            if created:
                for asset, amount in funds.items():
                    if not await _admin(["deposit", str(account), asset, amount], settings, deadline):
                        raise SetupError(f"the engine refused to deposit {amount} {asset} into account {account}")
                say(f"sim: account {account} created and funded ({', '.join(f'{v} {k}' for k, v in funds.items())})")
            else:
                say(f"sim: account {account} exists already (its key file was removed): a new key, no new funds")
            key, secret = await _key(settings, cipher, account, deadline)
            have[account] = Credentials(account, key, secret)
            save(state_dir, have)
    return {a: have[a] for a in accounts}
