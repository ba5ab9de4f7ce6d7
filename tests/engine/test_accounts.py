"""Accounts and funding in the engine: create, deposit, withdraw; every refusal; conservation; snapshots."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.accounts import FEE_ACCOUNT, MAX_AMOUNT
from engine.core import Engine
from tests.stubs import SPECS, Driver
from wire.codec import encode
from wire.commands import Command, CreateAccount, Deposit, Withdraw
from wire.enums import BalanceCause
from wire.events import AccountCreated, BalanceChanged, FundingRejected
from wire.reasons import RejectReason
from wire.venue import AssetSpec

ASSETS = (AssetSpec("BTC", 8), AssetSpec("ETH", 8), AssetSpec("USD", 2), AssetSpec("USDT", 6))


def driver() -> Driver:
    return Driver(SPECS, Engine(SPECS, ASSETS))


def create(account: int) -> CreateAccount:
    return CreateAccount("t", 1, account)


def deposit(account: int, asset: str, amount: int) -> Deposit:
    return Deposit("t", 1, account, asset, amount)


def withdraw(account: int, asset: str, amount: int) -> Withdraw:
    return Withdraw("t", 1, account, asset, amount)


def test_create_deposit_withdraw_when_valid_moves_free_balance() -> None:
    d = driver()
    assert d.apply(create(7)) == d.stamp([AccountCreated(0, 0, 0, 7)])
    assert d.apply(deposit(7, "USDT", 1_000_000)) == d.stamp(
        [BalanceChanged(0, 0, 0, 7, "USDT", 1_000_000, 0, BalanceCause.DEPOSIT)]
    )
    assert d.apply(withdraw(7, "USDT", 400_000)) == d.stamp(
        [BalanceChanged(0, 0, 0, 7, "USDT", 600_000, 0, BalanceCause.WITHDRAWAL)]
    )
    assert d.engine.accounts.balance(7, "USDT") == (600_000, 0)
    assert d.engine.accounts.balance(7, "BTC") == (0, 0)


@pytest.mark.parametrize(
    ("setup", "cmd", "reason"),
    [
        ([], deposit(7, "USDT", 5), RejectReason.UNKNOWN_ACCOUNT),
        ([], withdraw(7, "USDT", 5), RejectReason.UNKNOWN_ACCOUNT),
        ([create(7)], create(7), RejectReason.ACCOUNT_EXISTS),
        ([], create(FEE_ACCOUNT), RejectReason.INVALID_FIELD),
        ([], create(-3), RejectReason.INVALID_FIELD),
        ([create(7)], deposit(7, "DOGE", 5), RejectReason.UNKNOWN_ASSET),
        ([create(7)], deposit(7, "USDT", 0), RejectReason.AMOUNT_NOT_POSITIVE),
        ([create(7)], deposit(7, "USDT", -5), RejectReason.AMOUNT_NOT_POSITIVE),
        ([create(7)], withdraw(7, "USDT", -5), RejectReason.AMOUNT_NOT_POSITIVE),
        ([create(7)], deposit(7, "USDT", MAX_AMOUNT + 1), RejectReason.INVALID_FIELD),
        ([create(7), deposit(7, "USDT", 10)], withdraw(7, "USDT", 11), RejectReason.INSUFFICIENT_BALANCE),
        ([create(7), deposit(7, "USDT", 10)], withdraw(7, "BTC", 1), RejectReason.INSUFFICIENT_BALANCE),
    ],
)
def test_funding_when_invalid_is_rejected_and_changes_nothing(
    setup: list[Command], cmd: CreateAccount | Deposit | Withdraw, reason: RejectReason
) -> None:
    d = driver()
    d.run(*setup)
    before = state(d)
    (event,) = d.apply(cmd)
    assert isinstance(event, FundingRejected) and event.reason is reason
    assert event.account == cmd.account
    assert state(d) == before


def state(d: Driver) -> tuple[dict[int, dict[str, tuple[int, int]]], dict[str, int]]:
    """A deep copy of every balance and the supply."""
    accounts = d.engine.accounts
    balances = {acct: {a: (b.free, b.locked) for a, b in held.items()} for acct, held in accounts.balances.items()}
    return balances, dict(accounts.supply)


def test_balances_when_snapshotted_restore_exactly_and_replay_identically() -> None:
    d = driver()
    d.run(create(1), create(2), deposit(1, "BTC", 5), deposit(2, "USDT", 9), withdraw(1, "BTC", 2))
    restored = Engine.restore(SPECS, d.engine.snapshot(), ASSETS)
    assert restored.state_hash() == d.engine.state_hash()
    assert restored.accounts.balance(1, "BTC") == (3, 0)
    assert restored.accounts.supply == d.engine.accounts.supply
    tail: list[Command] = [deposit(2, "BTC", 1), withdraw(2, "USDT", 9), create(3)]
    resumed = Driver(SPECS, restored)
    a = [encode(ev) for cmd in tail for ev in resumed.apply(cmd)]
    b = [encode(ev) for cmd in tail for ev in d.apply(cmd)]
    assert a == b


funding: st.SearchStrategy[CreateAccount | Deposit | Withdraw] = st.one_of(
    st.builds(create, st.integers(-1, 4)),
    st.builds(deposit, st.integers(0, 4), st.sampled_from(["BTC", "USDT", "XYZ"]), st.integers(-5, 1_000)),
    st.builds(withdraw, st.integers(0, 4), st.sampled_from(["BTC", "USDT", "XYZ"]), st.integers(-5, 1_000)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(funding, max_size=60))
def test_funding_conserves_every_asset_and_never_goes_negative(cmds: list[CreateAccount | Deposit | Withdraw]) -> None:
    d = driver()  # check_invariants after each command: no negative amount, sum == deposits - withdrawals
    deposited = dict.fromkeys(("BTC", "ETH", "USD", "USDT"), 0)
    for cmd in cmds:
        for ev in d.apply(cmd):
            if isinstance(ev, BalanceChanged):
                sign = 1 if ev.cause is BalanceCause.DEPOSIT else -1
                assert isinstance(cmd, Deposit | Withdraw)
                deposited[ev.asset] += sign * cmd.amount
    assert d.engine.accounts.supply == deposited
