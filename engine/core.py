"""The engine: every symbol's matcher behind one entry point, ``Engine.apply(in_seq, ts, command)``.

The engine is a pure function of the journal. It performs no I/O, reads no clock, no random source and no
environment: time is the sequencer's stamp passed in with each command, an order's id is the in_seq of the command
that created it, and trade ids, ``out_seq`` and book update ids come from counters in its state. Applying the same
commands from the same state therefore yields byte-identical events, which is what makes replay, recovery and
auditing possible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from engine.accounts import Accounts
from engine.book import Order
from engine.context import Context
from engine.matching import Matcher
from engine.snapshot import (
    FORMAT_VERSION,
    READABLE_VERSIONS,
    AccountState,
    BalanceState,
    EngineState,
    FeeOverrideState,
    OrderState,
    SymbolState,
    decode_state,
    encode_state,
    state_version,
)
from wire.commands import CancelAll, CancelOrder, Command, PlaceOrder, ReplaceOrder, TakeSnapshot
from wire.enums import Side
from wire.errors import MercuryError
from wire.events import CancelRejected, Event, OrderRejected
from wire.reasons import RejectReason
from wire.venue import AssetSpec, SymbolSpec


class SequenceError(MercuryError):
    """A command was applied out of order: a bug in the caller, never bad input."""


class Engine:
    __slots__ = ("accounts", "ctx", "matchers", "risk", "snapshot_requested")

    def __init__(self, symbols: Iterable[SymbolSpec], assets: Iterable[AssetSpec] = (), *, risk: bool = True) -> None:
        """``risk=False`` runs matching alone: no account is needed to trade, nothing is locked, no fee is charged.
        Only matching tests and the benchmark's baseline use it; the engine service always runs with risk on."""
        self.ctx = Context()
        self.accounts = Accounts(assets, self.ctx)
        symbols = tuple(symbols)
        if risk:
            for spec in symbols:
                for asset in (spec.base, spec.quote):
                    if asset not in self.accounts.assets:
                        raise MercuryError(f"symbol {spec.symbol} trades asset {asset}, which the venue does not list")
        self.risk = risk
        self.matchers: dict[str, Matcher] = {s.symbol: Matcher(s, self.ctx, self.accounts, risk) for s in symbols}
        self.snapshot_requested = False  # a TakeSnapshot was applied; the caller stores the snapshot and resets it

    @property
    def in_seq(self) -> int:
        """The in_seq of the last command applied."""
        return self.ctx.in_seq

    @property
    def out_seq(self) -> int:
        """The out_seq of the last event emitted."""
        return self.ctx.out_seq

    def apply(self, in_seq: int, ts: int, cmd: Command) -> list[Event]:
        """Apply the journaled command ``in_seq`` (stamped ``ts``) and return the events it caused."""
        return self.apply_many(in_seq, [ts], [cmd])

    def apply_many(self, first_in_seq: int, stamps: list[int], cmds: list[Command], start: int = 0) -> list[Event]:
        """Apply ``cmds[start:]`` (command i has in_seq ``first_in_seq + i`` and stamp ``stamps[i]``, as in a
        journal batch) and return all their events in order. One call per batch keeps the per-command overhead
        (the result list, attribute lookups) out of the engine's loop."""
        ctx = self.ctx
        if first_in_seq + start != ctx.in_seq + 1:
            raise SequenceError(f"command {first_in_seq + start} applied after {ctx.in_seq}")
        matchers = self.matchers
        out: list[Event] = []
        in_seq = first_in_seq + start - 1
        for i in range(start, len(cmds)):
            cmd = cmds[i]
            in_seq += 1
            ctx.in_seq = in_seq
            ctx.ts = stamps[i]
            kind = type(cmd)
            if kind is PlaceOrder:
                matcher = matchers.get(cmd.symbol)  # type: ignore[union-attr]
                if matcher is None:
                    self._unknown_symbol(cmd, out)
                else:
                    matcher.place(cmd, out)  # type: ignore[arg-type]
            elif kind is CancelOrder:
                matcher = matchers.get(cmd.symbol)  # type: ignore[union-attr]
                if matcher is None:
                    self._unknown_symbol(cmd, out)
                else:
                    matcher.cancel(cmd, out)  # type: ignore[arg-type]
            elif kind is ReplaceOrder or kind is CancelAll:
                matcher = matchers.get(cmd.symbol)  # type: ignore[union-attr]
                if matcher is None:
                    self._unknown_symbol(cmd, out)
                elif kind is ReplaceOrder:
                    matcher.replace(cmd, out)  # type: ignore[arg-type]
                else:
                    matcher.cancel_all(cmd, out)  # type: ignore[arg-type]
            elif kind is TakeSnapshot:
                self.snapshot_requested = True  # the service stores one once this batch's events are queued
            else:
                self.accounts.apply(cmd, out)  # type: ignore[arg-type]
        return out

    def _unknown_symbol(self, cmd: Command, out: list[Event]) -> None:
        ctx = self.ctx
        ctx.out_seq += 1
        symbol = cmd.symbol  # type: ignore[union-attr]
        detail = f"symbol={symbol!r}"
        if isinstance(cmd, PlaceOrder):
            out.append(
                OrderRejected(
                    ctx.out_seq, ctx.in_seq, ctx.ts, symbol, cmd.account, cmd.client_oid,
                    RejectReason.UNKNOWN_SYMBOL, detail,
                )
            )  # fmt: skip
        elif isinstance(cmd, CancelOrder | ReplaceOrder):
            out.append(
                CancelRejected(
                    ctx.out_seq, ctx.in_seq, ctx.ts, symbol, cmd.account, cmd.order_id, cmd.client_oid,
                    RejectReason.UNKNOWN_SYMBOL, detail,
                )
            )  # fmt: skip
        else:
            assert isinstance(cmd, CancelAll)
            out.append(
                CancelRejected(
                    ctx.out_seq, ctx.in_seq, ctx.ts, symbol, cmd.account, 0, "", RejectReason.UNKNOWN_SYMBOL, detail
                )
            )

    # ---- state ------------------------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The whole state, encoded; ``Engine.restore`` turns it back into an identical engine. An empty balance
        (nothing free or locked) is left out: it is the same as no balance, and the engine creates them freely."""
        ctx = self.ctx
        symbols = []
        for name in sorted(self.matchers):
            m = self.matchers[name]
            orders = [
                OrderState(o.order_id, o.account, o.side, o.price, o.leaves, o.client_oid, o.type, o.tif, o.stp)
                for o in sorted(m.book.orders.values(), key=_order_id)
            ]
            symbols.append(SymbolState(name, m.update_id, m.trade_id, m.last_price, orders, m.prevented_id))
        accounts = [
            AccountState(
                account,
                [BalanceState(a, held[a].free, held[a].locked) for a in sorted(held) if held[a].free or held[a].locked],
            )
            for account, held in sorted(self.accounts.balances.items())
        ]
        fees = [FeeOverrideState(a, *rates) for a, rates in sorted(self.accounts.fee_overrides.items())]
        return encode_state(EngineState(FORMAT_VERSION, ctx.in_seq, ctx.out_seq, symbols, accounts, self.risk, fees))

    @classmethod
    def restore(cls, specs: Iterable[SymbolSpec], data: bytes, assets: Iterable[AssetSpec] = ()) -> Engine:
        version = state_version(data)
        if version not in READABLE_VERSIONS:
            raise MercuryError(
                f"snapshot format {version}, this engine reads {READABLE_VERSIONS}: a journal written under older"
                " rules cannot be replayed with it (docs/operations.md, 'Upgrading')"
            )
        state = decode_state(data)
        engine = cls(specs, assets, risk=state.risk)
        accounts = engine.accounts
        for a in state.accounts:
            accounts.balances.setdefault(a.account, {})
            for b in a.balances:
                if b.asset not in accounts.assets:
                    raise MercuryError(f"snapshot holds asset {b.asset} that the venue no longer lists")
                balance = accounts.get(a.account, b.asset)  # the fee account's, which matchers hold, are reused
                balance.free, balance.locked = b.free, b.locked
                accounts.supply[b.asset] += b.free + b.locked
        accounts.fee_overrides = {f.account: (f.maker_bps, f.taker_bps) for f in state.fee_overrides}
        ctx = engine.ctx
        ctx.in_seq, ctx.out_seq = state.in_seq, state.out_seq
        for s in state.symbols:
            m = engine.matchers.get(s.symbol)
            if m is None:
                if s.orders or s.trade_id or s.prevented_id:
                    raise MercuryError(f"snapshot holds symbol {s.symbol} that the venue no longer lists")
                continue
            m.update_id, m.trade_id, m.prevented_id = s.update_id, s.trade_id, s.prevented_id
            m.set_last_price(s.last_price)
            spec = m.spec
            for o in s.orders:
                hold = gain = None
                if state.risk:
                    spend, receive = (spec.quote, spec.base) if o.side is Side.BUY else (spec.base, spec.quote)
                    hold, gain = accounts.get(o.account, spend), accounts.get(o.account, receive)
                m.book.add(
                    Order(
                        o.order_id, o.account, o.side, o.price, o.leaves, o.client_oid, o.type, o.tif, o.stp,
                        hold, gain,
                    )
                )  # fmt: skip
        return engine

    def state_hash(self) -> str:
        return hashlib.sha256(self.snapshot()).hexdigest()

    def check_invariants(self) -> None:
        """Raise AssertionError if any book or balance is inconsistent; with risk on, also if any ``locked``
        differs from what the account's resting orders could still spend. Tests call it after every command."""
        for m in self.matchers.values():
            m.book.check_invariants()
        self.accounts.check_invariants()
        if not self.risk:
            return
        accounts = self.accounts
        expected: dict[tuple[int, str], int] = {}
        for m in self.matchers.values():
            spec = m.spec
            for o in m.book.orders.values():
                if o.side is Side.BUY:
                    asset, receive, amount = spec.quote, spec.base, o.leaves * o.price * spec.quote_per_tick_lot
                else:
                    asset, receive, amount = spec.base, spec.quote, o.leaves * spec.base_per_lot
                assert o.hold is accounts.balances[o.account][asset], f"order {o.order_id} locks the wrong balance"
                assert o.gain is accounts.balances[o.account][receive], f"order {o.order_id} receives elsewhere"
                expected[(o.account, asset)] = expected.get((o.account, asset), 0) + amount
        for account, held in accounts.balances.items():
            for asset, b in held.items():
                want = expected.pop((account, asset), 0)
                assert b.locked == want, f"account {account} locks {b.locked} {asset}, its orders {want}"
        assert not expected, f"orders lock balances that do not exist: {expected}"


def _order_id(order: Order) -> int:
    return order.order_id
