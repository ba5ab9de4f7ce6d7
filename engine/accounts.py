"""Accounts and balances: per account, per asset, ``free`` and ``locked`` integer units.

This is the state the risk checks will lock against (an order locks what it could spend, a fill moves funds, a
cancel releases the rest). For now it holds funding: accounts are created, credited and debited by journaled
commands only, so balances are rebuilt by replay like everything else.

Invariants (``check_invariants``): no amount is ever negative, and for every asset the sum over all accounts of
``free + locked`` equals what was deposited minus what was withdrawn (``supply``).
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.matching import Context
from wire.commands import CreateAccount, Deposit, Withdraw
from wire.enums import BalanceCause
from wire.events import AccountCreated, BalanceChanged, Event, FundingRejected
from wire.reasons import RejectReason
from wire.venue import AssetSpec

MAX_AMOUNT = 2**62  # far above any real balance; keeps every sum a small int and every encoding an int64
FEE_ACCOUNT = 0  # the venue's own account (fees land here); it exists from the start and cannot be created


class Accounts:
    __slots__ = ("assets", "balances", "ctx", "supply")

    def __init__(self, assets: Iterable[AssetSpec], ctx: Context) -> None:
        self.ctx = ctx
        self.assets = {a.name: a for a in assets}
        # account -> asset -> [free, locked]; an asset appears once the account first holds it
        self.balances: dict[int, dict[str, list[int]]] = {FEE_ACCOUNT: {}}
        self.supply: dict[str, int] = dict.fromkeys(self.assets, 0)

    def apply(self, cmd: CreateAccount | Deposit | Withdraw, out: list[Event]) -> None:
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
        balance = held.get(asset) or [0, 0]  # stored only once something is credited: a refusal leaves no trace
        if isinstance(cmd, Deposit):
            if balance[0] + amount > MAX_AMOUNT:
                self._rejected(account, asset, amount, RejectReason.INVALID_FIELD, f"balance over {MAX_AMOUNT}", out)
                return
            held[asset] = balance
            balance[0] += amount
            self.supply[asset] += amount
            cause = BalanceCause.DEPOSIT
        else:
            if amount > balance[0]:
                detail = f"amount={amount} free={balance[0]} locked={balance[1]}"
                self._rejected(account, asset, amount, RejectReason.INSUFFICIENT_BALANCE, detail, out)
                return
            balance[0] -= amount
            self.supply[asset] -= amount
            cause = BalanceCause.WITHDRAWAL
        ctx.out_seq += 1
        out.append(BalanceChanged(ctx.out_seq, ctx.in_seq, ctx.ts, account, asset, balance[0], balance[1], cause))

    def _rejected(
        self, account: int, asset: str, amount: int, reason: RejectReason, detail: str, out: list[Event]
    ) -> None:
        ctx = self.ctx
        ctx.out_seq += 1
        out.append(FundingRejected(ctx.out_seq, ctx.in_seq, ctx.ts, account, asset, amount, reason, detail))

    def balance(self, account: int, asset: str) -> tuple[int, int]:
        """(free, locked); (0, 0) for an asset the account never held."""
        held = self.balances.get(account, {}).get(asset)
        return (0, 0) if held is None else (held[0], held[1])

    def check_invariants(self) -> None:
        totals = dict.fromkeys(self.assets, 0)
        for account, held in self.balances.items():
            for asset, (free, locked) in held.items():
                assert free >= 0 and locked >= 0, f"negative balance: account {account} {asset}"
                totals[asset] += free + locked
        assert totals == self.supply, f"balances {totals} != deposits - withdrawals {self.supply}"
