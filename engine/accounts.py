"""Accounts and balances: per account, per asset, ``free`` and ``locked`` integer units; fee rate overrides.

Funding (create, deposit, withdraw) and fee overrides are applied here. Orders lock, spend and release through
the same ``Balance`` objects from ``engine.matching`` (each resting order holds references to the two balances
it spends from and receives into, so a fill costs no lookup).

Every change marks its balance in ``dirty``; at the end of each command ``flush`` emits one BalanceChanged per
balance the command changed, with its final amounts, in the order the balances were first touched. Trades credit
the fee account without marking it: its balances are followed from TradeExecuted's fees (engine.matching).

Invariants (``check_invariants``): no amount is ever negative, and for every asset the sum over all accounts,
the fee account included, of ``free + locked`` equals what was deposited minus what was withdrawn (``supply``).
The engine checks on top that each ``locked`` is exactly what the account's open orders could still spend.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from engine.context import Context
from wire.commands import CreateAccount, Deposit, SetFeeRates, Withdraw
from wire.enums import BalanceCause
from wire.events import AccountCreated, BalanceChanged, Event, FeeRatesSet, FundingRejected
from wire.reasons import RejectReason
from wire.venue import AssetSpec

MAX_AMOUNT: Final = 2**62  # far above any real balance; keeps every sum a small int and every encoding an int64
FEE_ACCOUNT: Final = 0  # the venue's own account (fees land here); it exists from the start and cannot be created
MAX_FEE_BPS: Final = 10_000  # exclusive: a fee is always less than what it is charged on, so no balance goes negative
DEPOSIT: Final = BalanceCause.DEPOSIT
WITHDRAWAL: Final = BalanceCause.WITHDRAWAL


class Balance:
    """One account's amounts of one asset. Identity matters: orders and the dirty map hold these objects."""

    __slots__ = ("account", "asset", "free", "locked")

    def __init__(self, account: int, asset: str, free: int = 0, locked: int = 0) -> None:
        self.account = account
        self.asset = asset
        self.free = free
        self.locked = locked


class Accounts:
    __slots__ = ("assets", "balances", "ctx", "dirty", "fee_overrides", "supply")

    def __init__(self, assets: Iterable[AssetSpec], ctx: Context) -> None:
        self.ctx = ctx
        self.assets = {a.name: a for a in assets}
        # account -> asset -> Balance; an asset appears once the account first holds it or has an order in it.
        # The fee account holds every asset from the start, so that matchers can keep references to its balances.
        self.balances: dict[int, dict[str, Balance]] = {
            FEE_ACCOUNT: {name: Balance(FEE_ACCOUNT, name) for name in sorted(self.assets)}
        }
        self.supply: dict[str, int] = dict.fromkeys(self.assets, 0)
        self.fee_overrides: dict[int, tuple[int, int]] = {}  # account -> (maker_bps, taker_bps)
        # balances changed by the command being applied, with why; flushed as events when it ends
        self.dirty: dict[Balance, BalanceCause] = {}

    def get(self, account: int, asset: str) -> Balance:
        """The account's balance of ``asset``, created empty if it never held any (the account must exist)."""
        held = self.balances[account]
        balance = held.get(asset)
        if balance is None:
            balance = held[asset] = Balance(account, asset)
        return balance

    def flush(self, out: list[Event]) -> None:
        """One BalanceChanged per balance the command changed, in the order they were first touched."""
        ctx = self.ctx
        in_seq, ts = ctx.in_seq, ctx.ts
        out_seq = ctx.out_seq
        for b, cause in self.dirty.items():
            out_seq += 1
            out.append(BalanceChanged(out_seq, in_seq, ts, b.account, b.asset, b.free, b.locked, cause))
        ctx.out_seq = out_seq
        self.dirty.clear()

    def apply(self, cmd: CreateAccount | Deposit | Withdraw | SetFeeRates, out: list[Event]) -> None:
        ctx = self.ctx
        if isinstance(cmd, CreateAccount):
            if cmd.account <= 0:
                self._rejected(cmd.account, "", 0, RejectReason.INVALID_FIELD, "account must be > 0", out)
            elif cmd.account in self.balances:
                self._rejected(cmd.account, "", 0, RejectReason.ACCOUNT_EXISTS, f"account={cmd.account}", out)
            else:
                self.balances[cmd.account] = {}
                ctx.out_seq += 1
                out.append(AccountCreated(ctx.out_seq, ctx.in_seq, ctx.ts, cmd.account))
            return
        if isinstance(cmd, SetFeeRates):
            self._set_fees(cmd, out)
            return
        account, asset, amount = cmd.account, cmd.asset, cmd.amount
        held = self.balances.get(account)
        if held is None:
            self._rejected(account, asset, amount, RejectReason.UNKNOWN_ACCOUNT, f"account={account}", out)
            return
        if asset not in self.assets:
            self._rejected(account, asset, amount, RejectReason.UNKNOWN_ASSET, f"asset={asset!r}", out)
            return
        if amount <= 0:
            self._rejected(account, asset, amount, RejectReason.AMOUNT_NOT_POSITIVE, f"amount={amount}", out)
            return
        balance = held.get(asset)
        free = 0 if balance is None else balance.free
        if isinstance(cmd, Deposit):
            if free + amount > MAX_AMOUNT:
                self._rejected(account, asset, amount, RejectReason.INVALID_FIELD, f"balance over {MAX_AMOUNT}", out)
                return
            if balance is None:  # stored only once something is credited: a refusal leaves no trace
                balance = held[asset] = Balance(account, asset)
            balance.free += amount
            self.supply[asset] += amount
            cause = DEPOSIT
        else:
            if balance is None or amount > balance.free:
                locked = 0 if balance is None else balance.locked
                detail = f"amount={amount} free={free} locked={locked}"
                self._rejected(account, asset, amount, RejectReason.INSUFFICIENT_BALANCE, detail, out)
                return
            balance.free -= amount
            self.supply[asset] -= amount
            cause = WITHDRAWAL
        ctx.out_seq += 1
        out.append(BalanceChanged(ctx.out_seq, ctx.in_seq, ctx.ts, account, asset, balance.free, balance.locked, cause))

    def _set_fees(self, cmd: SetFeeRates, out: list[Event]) -> None:
        account, maker, taker = cmd.account, cmd.maker_bps, cmd.taker_bps
        if account not in self.balances or account == FEE_ACCOUNT:
            self._rejected(account, "", 0, RejectReason.UNKNOWN_ACCOUNT, f"account={account}", out)
            return
        reset = maker == -1 and taker == -1
        if not reset and not (0 <= maker < MAX_FEE_BPS and 0 <= taker < MAX_FEE_BPS):
            detail = f"maker_bps={maker} taker_bps={taker}: each in [0, {MAX_FEE_BPS}), or both -1"
            self._rejected(account, "", 0, RejectReason.INVALID_FIELD, detail, out)
            return
        if reset:
            self.fee_overrides.pop(account, None)
        else:
            self.fee_overrides[account] = (maker, taker)
        ctx = self.ctx
        ctx.out_seq += 1
        out.append(FeeRatesSet(ctx.out_seq, ctx.in_seq, ctx.ts, account, maker, taker))

    def _rejected(
        self, account: int, asset: str, amount: int, reason: RejectReason, detail: str, out: list[Event]
    ) -> None:
        ctx = self.ctx
        ctx.out_seq += 1
        out.append(FundingRejected(ctx.out_seq, ctx.in_seq, ctx.ts, account, asset, amount, reason, detail))

    def balance(self, account: int, asset: str) -> tuple[int, int]:
        """(free, locked); (0, 0) for an asset the account never held."""
        held = self.balances.get(account, {}).get(asset)
        return (0, 0) if held is None else (held.free, held.locked)

    def check_invariants(self) -> None:
        assert not self.dirty, "balance changes left unflushed"
        totals = dict.fromkeys(self.assets, 0)
        for account, held in self.balances.items():
            for asset, b in held.items():
                assert b.account == account and b.asset == asset, "balance filed under the wrong key"
                assert b.free >= 0 and b.locked >= 0, f"negative balance: account {account} {asset}"
                totals[asset] += b.free + b.locked
        assert totals == self.supply, f"balances {totals} != deposits - withdrawals {self.supply}"
