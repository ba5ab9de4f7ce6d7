"""What ./mercury start prints a new user: a funded demo account and a working API key, the same on every start."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateways.conftest import Exchange, running_exchange
from tests.gateways.test_rest import signed
from tests.harness import ROOT, PostgresServer


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer) -> Iterator[Exchange]:
    with running_exchange(tmp_path_factory.mktemp("welcome"), postgres_server) as ex:
        yield ex


def welcome(exchange: Exchange, state: Path) -> str:
    env = dict(exchange.gateway.env, MERCURY_FRONTDOOR_STATE_DIR=str(state))
    done = subprocess.run([sys.executable, "-m", "frontdoor.welcome", "--once", "--skip-door-check"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=180, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_start_prints_a_funded_demo_account_whose_key_trades(exchange: Exchange, tmp_path: Path) -> None:
    first = welcome(exchange, tmp_path)
    found_key, found_secret = re.search(r"API key\s+(\S+)", first), re.search(r"secret\s+(\S+)", first)
    assert found_key and found_secret, first
    key, secret = found_key[1], found_secret[1]
    assert "/ui/" in first and "TargetCompID MERCURY" in first
    demo = Exchange(exchange.venue, exchange.pg_url, exchange.url, {1000: (key, secret)}, exchange.gateway)
    status, account = signed(demo, "GET", "/api/v3/account", {}, account=1000)
    assert status == 200, account
    balances = {b["asset"]: b["free"] for b in account["balances"]}
    assert balances["USDT"] == "100000.00000000" and balances["BTC"] == "2.00000000"
    again = welcome(exchange, tmp_path)
    assert key in again, "a second start shows the same key"
    assert (tmp_path / "demo-key.json").stat().st_mode & 0o077 == 0, "the key file is readable by its owner only"
