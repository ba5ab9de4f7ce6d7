"""Property tests of the money: random streams of orders, cancels, replaces, deposits, withdrawals and fee changes
over two symbols and three accounts whose balances are small enough that many orders are refused.

After every command:

- for every asset, the sum over all accounts plus the fee account equals deposits minus withdrawals, counted here
  from the commands and their events, not from the engine's own books;
- every account's free + locked equals what a ledger kept by this test from the events says: deposits,
  withdrawals, and each trade's legs and fees, the fees worked out here again from the rates in force;
- every ``locked`` equals exactly what the account's open orders (tracked here from the events) could still spend;
- no amount is negative (``Engine.check_invariants``), and a mirror fed only the BalanceChanged events holds the
  engine's balances (the fee account's followed from the trades' fees, as the protocol says);
- a limit order is refused INSUFFICIENT_BALANCE exactly when its lock exceeds the free balance;
- a market order by quote amount never pays (buy) or takes in (sell) more than that amount, and a sell by quote
  amount locks only base the account had free.

And with every account funded far beyond its needs, risk changes nothing in matching: the same stream gives the
same order, trade and book events as the matching-only engine.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace as spec_with

import msgspec
from hypothesis import event, given
from hypothesis import strategies as st

from engine.accounts import FEE_ACCOUNT, Balance
from engine.core import Engine
from tests.engine.test_properties import ENGINE_PROFILE, PROP_SPECS, SHRINK_TIMEOUT, STREAMS, stamp_of
from tests.stubs import BUY, FOK, IOC, LIMIT, LIMIT_MAKER, MARKET, SELL, place
from wire.commands import Command, CreateAccount, Deposit, PlaceOrder, SetFeeRates, Withdraw
from wire.enums import BalanceCause, Side
from wire.events import (
    BalanceChanged,
    Event,
    FeeRatesSet,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderReplaced,
    TradeExecuted,
)
from wire.reasons import RejectReason
from wire.venue import AssetSpec, SymbolSpec

# the property specs of the matching tests, with money: 10 base units a lot, 3 quote units a tick-lot, fees
RISK_SPECS = tuple(
    spec_with(s, base=s.symbol, quote="USD", base_per_lot=10, quote_per_tick_lot=3, maker_fee_bps=15, taker_fee_bps=25)
    for s in PROP_SPECS
)
SPECS_BY_NAME = {s.symbol: s for s in RISK_SPECS}
ASSETS = (AssetSpec("BTC", 8), AssetSpec("ETH", 8), AssetSpec("USD", 2))
ASSET_NAMES = [a.name for a in ASSETS]
ACCOUNTS = (1, 2, 3)


@st.composite
def money_streams(draw: st.DrawFn) -> list[Command]:
    """Accounts created and given a little of each asset (a buy of 8 lots at 100 locks 2 400 USD units, a sell
    80 base units), then the matching stream with deposits, withdrawals, fee changes and quote-amount market orders
    (both sides) mixed in."""
    cmds: list[Command] = [CreateAccount("p", 0, a) for a in ACCOUNTS]
    for account in ACCOUNTS:
        for asset in ASSET_NAMES:
            cmds.append(Deposit("p", 0, account, asset, draw(st.integers(0, 3_000 if asset == "USD" else 150))))
    for cmd in draw(STREAMS):
        roll = draw(st.integers(0, 99))
        account = draw(st.sampled_from(ACCOUNTS))
        if roll < 6:
            asset, amount = draw(st.sampled_from(ASSET_NAMES)), draw(st.integers(1, 2_000))
            cmds.append((Deposit if roll < 3 else Withdraw)("p", 0, account, asset, amount))
        elif roll < 8:
            rates = draw(st.sampled_from([(-1, -1), (0, 0), (1, 9_999), (30, 10)]))
            cmds.append(SetFeeRates("p", 0, account, *rates))
        elif roll < 16:
            symbol, side = draw(st.sampled_from(list(SPECS_BY_NAME))), draw(st.sampled_from([BUY, SELL]))
            by_quote = place(account, side, MARKET, draw(st.sampled_from([IOC, FOK])), 0, 0, symbol=symbol)
            cmds.append(msgspec.structs.replace(by_quote, quote_qty=draw(st.integers(-1, 3_000))))
        cmds.append(cmd)
    return cmds


class Ledger:
    """What every balance must be, from the commands and events alone."""

    def __init__(self) -> None:
        self.total: defaultdict[tuple[int, str], int] = defaultdict(int)  # free + locked
        self.net: defaultdict[str, int] = defaultdict(int)  # deposits - withdrawals
        self.rates: dict[int, tuple[int, int]] = {}
        self.open: dict[int, tuple[int, str, Side, int, int]] = {}  # order id -> (account, symbol, side, price, leaves)
        self.mirror: dict[tuple[int, str], tuple[int, int]] = {}  # from BalanceChanged (+ fees for account 0)

    def fee(self, account: int, received: int, maker: bool, spec: SymbolSpec) -> int:
        own = self.rates.get(account)
        bps = (spec.maker_fee_bps if maker else spec.taker_fee_bps) if own is None else own[0 if maker else 1]
        return -(-received * bps // 10_000)

    def apply(self, cmd: Command, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, BalanceChanged):
                assert ev.account != FEE_ACCOUNT or ev.cause in (BalanceCause.DEPOSIT, BalanceCause.WITHDRAWAL)
                self.mirror[(ev.account, ev.asset)] = (ev.free, ev.locked)
                if ev.cause in (BalanceCause.DEPOSIT, BalanceCause.WITHDRAWAL):
                    assert isinstance(cmd, Deposit | Withdraw) and (cmd.account, cmd.asset) == (ev.account, ev.asset)
                    sign = 1 if isinstance(cmd, Deposit) else -1
                    self.total[(cmd.account, cmd.asset)] += sign * cmd.amount
                    self.net[cmd.asset] += sign * cmd.amount
            elif isinstance(ev, FeeRatesSet):
                if ev.maker_bps == -1:
                    self.rates.pop(ev.account, None)
                else:
                    self.rates[ev.account] = (ev.maker_bps, ev.taker_bps)
            elif isinstance(ev, OrderAccepted):
                self.open[ev.order_id] = (ev.account, ev.symbol, ev.side, ev.price, ev.qty)
            elif isinstance(ev, OrderReplaced):
                account, symbol, side, _, _ = self.open.pop(ev.order_id)
                self.open[ev.new_order_id] = (account, symbol, side, ev.price, ev.qty)
            elif isinstance(ev, OrderCanceled):
                del self.open[ev.order_id]
            elif isinstance(ev, TradeExecuted):
                self._trade(ev)

    def _trade(self, ev: TradeExecuted) -> None:
        spec = SPECS_BY_NAME[ev.symbol]
        base, quote = ev.qty * spec.base_per_lot, ev.price * ev.qty * spec.quote_per_tick_lot
        taker_buys = ev.taker_side is Side.BUY
        buyer, seller = (ev.taker_account, ev.maker_account) if taker_buys else (ev.maker_account, ev.taker_account)
        buyer_fee = self.fee(buyer, base, maker=not taker_buys, spec=spec)
        seller_fee = self.fee(seller, quote, maker=taker_buys, spec=spec)
        assert (ev.taker_fee, ev.maker_fee) == ((buyer_fee, seller_fee) if taker_buys else (seller_fee, buyer_fee))
        t = self.total
        t[(buyer, spec.base)] += base - buyer_fee
        t[(buyer, spec.quote)] -= quote
        t[(seller, spec.base)] -= base
        t[(seller, spec.quote)] += quote - seller_fee
        t[(FEE_ACCOUNT, spec.base)] += buyer_fee
        t[(FEE_ACCOUNT, spec.quote)] += seller_fee
        for asset, fee in ((spec.base, buyer_fee), (spec.quote, seller_fee)):
            free, locked = self.mirror.get((FEE_ACCOUNT, asset), (0, 0))
            self.mirror[(FEE_ACCOUNT, asset)] = (free + fee, locked)
        for order_id in (ev.maker_order_id, ev.taker_order_id):
            account, symbol, side, price, leaves = self.open[order_id]
            self.open[order_id] = (account, symbol, side, price, leaves - ev.qty)

    def locks(self) -> dict[tuple[int, str], int]:
        """What the open orders could still spend; market orders never stay open past their command."""
        locked: defaultdict[tuple[int, str], int] = defaultdict(int)
        for order_id, (account, symbol, side, price, leaves) in list(self.open.items()):
            if not leaves:
                del self.open[order_id]
                continue
            spec = SPECS_BY_NAME[symbol]
            if side is Side.BUY:
                locked[(account, spec.quote)] += leaves * price * spec.quote_per_tick_lot
            else:
                locked[(account, spec.base)] += leaves * spec.base_per_lot
        return locked


def lock_of(cmd: PlaceOrder) -> tuple[str, int]:
    spec = SPECS_BY_NAME[cmd.symbol]
    if cmd.side is Side.BUY:
        return spec.quote, cmd.price * cmd.qty * spec.quote_per_tick_lot
    return spec.base, cmd.qty * spec.base_per_lot


@SHRINK_TIMEOUT
@ENGINE_PROFILE
@given(money_streams())
def test_money_is_conserved_settled_exactly_and_locked_exactly_when_streams_are_random(cmds: list[Command]) -> None:
    engine = Engine(RISK_SPECS, ASSETS)
    ledger = Ledger()
    for in_seq, cmd in enumerate(cmds, start=1):
        free_before = {k: (b.free, b.locked) for k, b in _balances(engine).items()}
        events = engine.apply(in_seq, stamp_of(in_seq), cmd)
        engine.check_invariants()  # nothing negative; engine supply == balances; locks == its own books
        ledger.apply(cmd, events)

        balances = {k: (b.free, b.locked) for k, b in _balances(engine).items()}
        for asset in ASSET_NAMES:
            assert sum(f + lk for (_, a), (f, lk) in balances.items() if a == asset) == ledger.net[asset]
        for key, (free, locked) in balances.items():
            assert free + locked == ledger.total[key], f"{key} after command {in_seq}: {cmd!r}"
        locks = ledger.locks()
        assert {k: lk for k, (_, lk) in balances.items() if lk} == dict(locks), f"after command {in_seq}"
        assert {k: v for k, v in ledger.mirror.items() if v != (0, 0)} == {
            k: v for k, v in balances.items() if v != (0, 0)
        }

        if isinstance(cmd, PlaceOrder) and cmd.type in (LIMIT, LIMIT_MAKER) and cmd.symbol in SPECS_BY_NAME:
            first = events[0]
            asset, need = lock_of(cmd)
            free = free_before.get((cmd.account, asset), (0, 0))[0]
            if isinstance(first, OrderRejected) and first.reason is RejectReason.INSUFFICIENT_BALANCE:
                assert need > free
                event("a limit order refused for its balance")
            elif isinstance(first, OrderAccepted):
                assert need <= free
        if isinstance(cmd, PlaceOrder) and cmd.quote_qty > 0 and isinstance(events[0], OrderAccepted):
            # by quote amount: a buy never spends more than the amount, a sell never takes in more (before fees),
            # and a sell locked the base of the lots it was converted into, which it had free
            spec = SPECS_BY_NAME[cmd.symbol]
            trades = [ev for ev in events if isinstance(ev, TradeExecuted)]
            assert sum(t.price * t.qty * spec.quote_per_tick_lot for t in trades) <= cmd.quote_qty
            if cmd.side is Side.SELL:
                assert events[0].qty * spec.base_per_lot <= free_before.get((cmd.account, spec.base), (0, 0))[0]
                event("a market sell by quote amount accepted")


def _balances(engine: Engine) -> dict[tuple[int, str], Balance]:
    return {(account, asset): b for account, held in engine.accounts.balances.items() for asset, b in held.items()}


@SHRINK_TIMEOUT
@ENGINE_PROFILE
@given(STREAMS)
def test_risk_changes_nothing_in_matching_when_every_account_is_rich(cmds: list[Command]) -> None:
    rich = Engine(RISK_SPECS, ASSETS)
    setup: list[Command] = [CreateAccount("p", 0, a) for a in ACCOUNTS]
    setup += [Deposit("p", 0, a, asset, 10**15) for a in ACCOUNTS for asset in ASSET_NAMES]
    for in_seq, cmd in enumerate(setup, start=1):
        rich.apply(in_seq, 0, cmd)
    plain = Engine(RISK_SPECS, risk=False)
    plain.ctx.in_seq = rich.ctx.in_seq
    plain.ctx.out_seq = rich.ctx.out_seq
    for in_seq, cmd in enumerate(cmds, start=len(setup) + 1):
        with_risk = [
            msgspec.structs.replace(ev, maker_fee=0, taker_fee=0) if isinstance(ev, TradeExecuted) else ev
            for ev in rich.apply(in_seq, stamp_of(in_seq), cmd)
            if not isinstance(ev, BalanceChanged)
        ]
        without = plain.apply(in_seq, stamp_of(in_seq), cmd)
        assert [msgspec.structs.replace(e, out_seq=0) for e in with_risk] == [
            msgspec.structs.replace(e, out_seq=0) for e in without
        ], f"command {in_seq}: {cmd!r}"
        plain.ctx.out_seq = rich.ctx.out_seq  # balance events take out_seqs the matching-only engine does not use
