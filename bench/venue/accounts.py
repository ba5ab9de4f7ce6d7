"""The load's own trading accounts: created, funded and given HMAC API keys, on a private venue or a running one.

The accounts are created and funded with the same journaled commands as ``python -m client.admin`` (CreateAccount,
Deposit), pipelined through one ``SequencerClient`` because a thousand accounts one admin call at a time would take
minutes; their keys are made by ``persistence.apikeys.create_hmac`` once the PostgreSQL persister has stored each
account (the key's foreign key needs it), which is what ``frontdoor/welcome.py`` does for the demo account.

How many: the gateways allow each account ``MERCURY_ORDERS_PER_10S`` new orders per 10 s window (100 by default,
wire/config.py), so a rate of R orders/s needs more than R * 10 / 100 accounts; ``accounts_for`` leaves a margin
because windows are aligned to the clock and the gateways share their counts only every 100 ms.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

import asyncpg

from client.sequencer import SequencerClient
from persistence.apikeys import SecretCipher, await_account, create_hmac
from wire.commands import Command
from wire.config import Settings
from wire.enums import AckStatus

FUNDS = {"USDT": 10**15, "BTC": 10**11}  # units (8 decimals): 10M USDT and 1,000 BTC each, far above 30 s of orders
MARGIN = 1.5  # accounts beyond the bare minimum the order limit needs


@dataclass(frozen=True, slots=True)
class Trader:
    account: int
    key: str
    secret: str


def accounts_for(rate: float, orders_per_10s: int = 100) -> int:
    """Accounts enough for ``rate`` new orders/s under the per-account limit of ``orders_per_10s``."""
    return max(10, math.ceil(rate * 10 / orders_per_10s * MARGIN))


def fund(settings: Settings, accounts: range, funds: dict[str, int] = FUNDS) -> int:
    """Create and fund ``accounts`` (an existing account's CreateAccount is refused by the engine and its deposit
    still lands, so a second run against the same venue reuses them); returns the last in_seq."""
    cmds: list[Command] = []
    with SequencerClient(settings, name="bench-accounts", timeout=10.0) as c:
        for account in accounts:
            cmds.append(c.create_account(account))
            cmds += [c.deposit(account, asset, units) for asset, units in funds.items()]
        last = 0
        for i in range(0, len(cmds), 512):
            chunk = cmds[i : i + 512]
            for cmd in chunk:
                c.send(cmd)
            for _ in chunk:
                ack = c.recv_ack()
                if ack.status is not AckStatus.JOURNALED:
                    raise RuntimeError(f"funding refused by the sequencer: {ack.status.name} {ack.detail}")
                last = max(last, ack.in_seq)
    return last


async def make_keys(pg_url: str, cipher: SecretCipher, accounts: range, timeout: float = 120.0) -> list[Trader]:
    """An HMAC key per account, each made as soon as the persister has stored the account."""
    deadline = time.monotonic() + timeout
    traders: list[Trader] = []
    conn = await asyncpg.connect(pg_url)
    try:
        for account in accounts:
            await await_account(conn, account, deadline)  # the persister may be behind the funding commands
            key, secret = await create_hmac(conn, cipher, account, "bench")
            traders.append(Trader(account, key, secret))
    finally:
        await conn.close()
    return traders


def prepare(settings: Settings, pg_url: str, cipher: SecretCipher, first: int, count: int) -> list[Trader]:
    accounts = range(first, first + count)
    fund(settings, accounts)
    return asyncio.run(make_keys(pg_url, cipher, accounts))
