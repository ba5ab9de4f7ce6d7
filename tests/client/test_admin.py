"""The admin CLI against the real venue: each funding command, each refusal, and a venue that is down."""

from __future__ import annotations

import pytest

from client.admin import AdminError, run
from tests.harness import Venue


def test_admin_when_funding_prints_new_balances(venue: Venue) -> None:
    assert run(["create-account", "7"], venue.settings) == "account 7 created"
    deposited = run(["deposit", "7", "USDT", "1000.5"], venue.settings)
    assert deposited == "account 7 USDT: free 1000.50000000, locked 0.00000000"
    withdrawn = run(["withdraw", "7", "USDT", "0.5"], venue.settings)
    assert withdrawn == "account 7 USDT: free 1000.00000000, locked 0.00000000"


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (["deposit", "8", "USDT", "1"], "refused: unknown account", 1),
        (["withdraw", "7", "USDT", "2"], "refused: insufficient balance (amount=200000000 free=100000000", 1),
        (["create-account", "7"], "refused: account exists", 1),
        (["deposit", "7", "DOGE", "1"], "unknown asset 'DOGE'", 2),
        (["deposit", "7", "USDT", "0.000000001"], "not a multiple of the USDT unit", 2),
        (["deposit", "7", "USDT", "-1"], "refused: amount not positive", 1),
    ],
)
def test_admin_when_refused_says_why(venue: Venue, argv: list[str], message: str, code: int) -> None:
    run(["create-account", "7"], venue.settings)
    run(["deposit", "7", "USDT", "1"], venue.settings)
    with pytest.raises(AdminError) as info:
        run(argv, venue.settings)
    assert message in str(info.value) and info.value.code == code


def test_admin_sets_and_resets_an_accounts_fee_rates(venue: Venue) -> None:
    run(["create-account", "7"], venue.settings)
    assert run(["set-fees", "7", "2", "5"], venue.settings) == "account 7 fees: maker 2 bps, taker 5 bps"
    assert run(["set-fees", "7", "default"], venue.settings) == "account 7 pays the symbols' fee rates"


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (["set-fees", "8", "1", "1"], "refused: unknown account", 1),
        (["set-fees", "7", "10000", "1"], "refused: invalid field (maker_bps=10000 taker_bps=1", 1),
        (["set-fees", "7", "2"], "set-fees needs MAKER_BPS TAKER_BPS, or 'default'", 2),
        (["set-fees", "7", "2.5", "1"], "fee rates are whole basis points", 2),
    ],
)
def test_admin_set_fees_when_refused_says_why(venue: Venue, argv: list[str], message: str, code: int) -> None:
    run(["create-account", "7"], venue.settings)
    with pytest.raises(AdminError) as info:
        run(argv, venue.settings)
    assert message in str(info.value) and info.value.code == code


def test_admin_when_sequencer_down_says_so(venue: Venue) -> None:
    venue.sequencer.kill9()
    with pytest.raises(AdminError, match="sequencer not reachable") as info:
        run(["create-account", "7"], venue.settings, timeout=0.5)
    assert info.value.code == 2
