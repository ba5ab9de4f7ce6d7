"""Pre-trade risk in the engine, command by command: what each order locks, what a fill moves (fees included),
what leaves release, and what every refusal gets. The amounts are worked out by hand in each test.

The symbol trades BTC against USD with a lot of 1 000 BTC units and a tick x lot of 100 USD units, a maker fee
of 15 bps and a taker fee of 25 bps, so that a unit mix-up or a fee rounded the wrong way changes the numbers.
"""

from __future__ import annotations

from dataclasses import replace as spec_with

import msgspec
import pytest

from engine.core import Engine
from tests.stubs import (
    BTC,
    BUY,
    FOK,
    IOC,
    LIMIT,
    MARKET,
    SELL,
    SYM,
    Driver,
    accepted,
    cancel,
    cancel_all,
    cancel_rejected,
    canceled,
    delta,
    limit,
    market,
    place,
    rejected,
    replace,
    replaced,
    state_without_seqs,
    trade,
)
from wire.codec import encode
from wire.commands import Command, CreateAccount, Deposit, PlaceOrder, SetFeeRates, Withdraw
from wire.enums import BalanceCause, CancelReason, SelfTradeMode, Side
from wire.events import (
    BalanceChanged,
    Event,
    FeeRatesSet,
    FundingRejected,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    TradeExecuted,
)
from wire.reasons import RejectReason
from wire.venue import AssetSpec

SPEC = spec_with(BTC, base="BTC", quote="USD", base_per_lot=1_000, quote_per_tick_lot=100, maker_fee_bps=15,
                 taker_fee_bps=25)  # fmt: skip
SPECS = (SPEC,)
ASSETS = (AssetSpec("BTC", 8), AssetSpec("USD", 2))
ORDER, TRADE = BalanceCause.ORDER, BalanceCause.TRADE
BUYER, SELLER = 1, 2
USD0, BTC0 = 10_000_000, 100_000  # the buyer's USD and the seller's BTC (100 lots)


def bal(account: int, asset: str, free: int, locked: int, cause: BalanceCause) -> BalanceChanged:
    return BalanceChanged(0, 0, 0, account, asset, free, locked, cause)


def fill(trade_id: int, price: int, qty: int, side: Side, maker: tuple[int, int, int], taker: tuple[int, int, int],
         maker_fee: int, taker_fee: int) -> TradeExecuted:  # fmt: skip
    return msgspec.structs.replace(
        trade(trade_id, price, qty, side, maker=maker, taker=taker), maker_fee=maker_fee, taker_fee=taker_fee
    )


@pytest.fixture
def d() -> Driver:
    """Account 1 holds 100 000.00 USD, account 2 holds 100 lots of BTC; account 3 exists with nothing."""
    d = Driver(SPECS, Engine(SPECS, ASSETS))
    d.run(
        CreateAccount("t", 1, BUYER),
        CreateAccount("t", 2, SELLER),
        CreateAccount("t", 3, 3),
        Deposit("t", 4, BUYER, "USD", USD0),
        Deposit("t", 5, SELLER, "BTC", BTC0),
    )
    return d


def bare(event: Event) -> Event:
    """The event without its envelope, to compare with a template."""
    return msgspec.structs.replace(event, out_seq=0, in_seq=0, ts=0)


def balance(d: Driver, account: int, asset: str) -> tuple[int, int]:
    return d.engine.accounts.balance(account, asset)


def refused(d: Driver, cmd: Command) -> Event:
    """Apply a command that must be refused: exactly one event, and the whole state unchanged."""
    before = state_without_seqs(d.engine)
    (event,) = d.apply(cmd)
    assert state_without_seqs(d.engine) == before
    return event


# ---- locks ----------------------------------------------------------------------------------------------------


def test_limit_buy_locks_price_times_quantity_in_quote(d: Driver) -> None:
    # 100 ticks x 5 lots x 100 USD units per tick-lot = 50 000; the fee is charged in BTC, so nothing more
    assert d.apply(limit(BUYER, BUY, 100, 5)) == d.stamp(
        [accepted(d.in_seq, BUYER, BUY, 100, 5), delta(1, BUY, 100, 5), bal(BUYER, "USD", USD0 - 50_000, 50_000, ORDER)]
    )


def test_sell_locks_quantity_in_base(d: Driver) -> None:
    assert d.apply(limit(SELLER, SELL, 100, 5)) == d.stamp(
        [
            accepted(d.in_seq, SELLER, SELL, 100, 5),
            delta(1, SELL, 100, 5),
            bal(SELLER, "BTC", BTC0 - 5_000, 5_000, ORDER),
        ]
    )


def test_sell_of_more_than_the_account_holds_is_rejected(d: Driver) -> None:
    event = refused(d, limit(SELLER, SELL, 100, 101))
    assert event == d.stamp([rejected(SELLER, RejectReason.INSUFFICIENT_BALANCE, "needs 101000 BTC, free 100000")])[0]


def test_second_order_that_together_with_the_first_exceeds_the_balance_is_rejected(d: Driver) -> None:
    d.apply(limit(SELLER, SELL, 100, 60))
    event = refused(d, limit(SELLER, SELL, 101, 50))
    assert isinstance(event, OrderRejected) and event.reason is RejectReason.INSUFFICIENT_BALANCE
    assert event.detail == "needs 50000 BTC, free 40000"
    assert len(d.apply(limit(SELLER, SELL, 101, 40))) == 3  # exactly what is left is fine


def test_buy_that_needs_one_unit_more_than_free_is_rejected(d: Driver) -> None:
    d.apply(Deposit("t", 6, 3, "USD", 49_999))
    event = refused(d, limit(3, BUY, 100, 5))
    assert isinstance(event, OrderRejected) and event.detail == "needs 50000 USD, free 49999"


def test_withdraw_while_funds_are_locked_is_refused_beyond_free(d: Driver) -> None:
    d.apply(limit(SELLER, SELL, 100, 60))
    event = refused(d, Withdraw("t", 6, SELLER, "BTC", 40_001))
    assert isinstance(event, FundingRejected) and event.reason is RejectReason.INSUFFICIENT_BALANCE
    assert event.detail == "amount=40001 free=40000 locked=60000"
    d.apply(Withdraw("t", 7, SELLER, "BTC", 40_000))
    assert balance(d, SELLER, "BTC") == (0, 60_000)


@pytest.mark.parametrize(
    ("account", "reason"),
    [(9, RejectReason.UNKNOWN_ACCOUNT), (0, RejectReason.UNKNOWN_ACCOUNT)],
    ids=["unknown-account", "fee-account-cannot-trade"],
)
def test_order_from_an_account_that_cannot_trade_is_rejected(d: Driver, account: int, reason: RejectReason) -> None:
    event = refused(d, limit(account, BUY, 100, 1))
    assert event == d.stamp([rejected(account, reason, f"account={account}")])[0]


# ---- fills and fees -----------------------------------------------------------------------------------------------


def test_fill_below_the_limit_moves_funds_charges_fees_up_and_releases_the_over_lock(d: Driver) -> None:
    d.apply(limit(SELLER, SELL, 99, 5))
    sell = d.in_seq  # an order's id is its command's in_seq
    # the buy locks 100 x 5 x 100 = 50 000 and pays 99 x 5 x 100 = 49 500: 500 come back at once.
    # buyer (taker, 25 bps) receives 5 000 BTC units: fee 12.5 -> 13; seller (maker, 15 bps) receives 49 500 USD
    # units: fee 74.25 -> 75. Both rounded up, in the venue's favour.
    assert d.apply(limit(BUYER, BUY, 100, 5)) == d.stamp(
        [
            accepted(d.in_seq, BUYER, BUY, 100, 5),
            fill(1, 99, 5, BUY, maker=(sell, SELLER, 0), taker=(d.in_seq, BUYER, 0), maker_fee=75, taker_fee=13),
            delta(2, SELL, 99, 0),
            bal(BUYER, "USD", USD0 - 49_500, 0, TRADE),
            bal(BUYER, "BTC", 5_000 - 13, 0, TRADE),
            bal(SELLER, "BTC", BTC0 - 5_000, 0, TRADE),
            bal(SELLER, "USD", 49_500 - 75, 0, TRADE),
        ]  # the fee account's balances are followed from the trade's fees: no BalanceChanged for them
    )
    assert d.engine.accounts.balance(0, "BTC") == (13, 0) and d.engine.accounts.balance(0, "USD") == (75, 0)


def test_resting_buy_partly_filled_keeps_exactly_its_leaves_locked(d: Driver) -> None:
    d.apply(limit(BUYER, BUY, 100, 5))
    d.apply(limit(SELLER, SELL, 100, 2))  # the buy is the maker now: it pays its own price, 20 000
    assert balance(d, BUYER, "USD") == (USD0 - 50_000, 30_000)
    assert balance(d, BUYER, "BTC") == (2_000 - 3, 0)  # maker fee 15 bps of 2 000 = 3
    assert balance(d, SELLER, "USD") == (20_000 - 50, 0)  # taker fee 25 bps of 20 000 = 50
    assert d.engine.accounts.balance(0, "BTC") == (3, 0)


def test_fee_overrides_replace_the_symbol_rates_until_reset(d: Driver) -> None:
    assert d.apply(SetFeeRates("t", 6, BUYER, 0, 0)) == d.stamp([FeeRatesSet(0, 0, 0, BUYER, 0, 0)])
    d.apply(limit(SELLER, SELL, 100, 4))
    (_, trade_event, *_) = d.apply(limit(BUYER, BUY, 100, 2))
    assert isinstance(trade_event, TradeExecuted) and (trade_event.maker_fee, trade_event.taker_fee) == (30, 0)
    d.apply(SetFeeRates("t", 7, BUYER, -1, -1))
    (_, trade_event, *_) = d.apply(limit(BUYER, BUY, 100, 2))
    assert isinstance(trade_event, TradeExecuted) and (trade_event.maker_fee, trade_event.taker_fee) == (30, 5)


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        (SetFeeRates("t", 9, 9, 1, 1), RejectReason.UNKNOWN_ACCOUNT),
        (SetFeeRates("t", 9, 0, 1, 1), RejectReason.UNKNOWN_ACCOUNT),
        (SetFeeRates("t", 9, BUYER, 10_000, 1), RejectReason.INVALID_FIELD),
        (SetFeeRates("t", 9, BUYER, 1, -2), RejectReason.INVALID_FIELD),
        (SetFeeRates("t", 9, BUYER, -1, 5), RejectReason.INVALID_FIELD),
    ],
    ids=["unknown-account", "fee-account", "rate-too-high", "rate-negative", "half-reset"],
)
def test_fee_rates_when_invalid_are_refused_and_change_nothing(
    d: Driver, cmd: SetFeeRates, reason: RejectReason
) -> None:
    event = refused(d, cmd)
    assert isinstance(event, FundingRejected) and event.reason is reason and event.account == cmd.account


# ---- leaving the book releases -------------------------------------------------------------------------------------


def test_cancel_releases_the_whole_lock(d: Driver) -> None:
    d.apply(limit(BUYER, BUY, 100, 5))
    buy = d.in_seq
    assert d.apply(cancel(BUYER, buy)) == d.stamp(
        [canceled(buy, BUYER, 5, CancelReason.USER), delta(2, BUY, 100, 0), bal(BUYER, "USD", USD0, 0, ORDER)]
    )


def test_cancel_all_releases_every_order(d: Driver) -> None:
    d.run(limit(SELLER, SELL, 100, 5), limit(SELLER, SELL, 101, 7))
    events = d.apply(cancel_all(SELLER))
    assert bare(events[-1]) == bal(SELLER, "BTC", BTC0, 0, ORDER)
    assert len(events) == 5  # two cancels, two deltas, one balance


def test_ioc_remainder_releases_what_it_did_not_spend(d: Driver) -> None:
    d.apply(limit(SELLER, SELL, 100, 2))
    events = d.apply(limit(BUYER, BUY, 100, 5, tif=IOC))
    assert canceled(d.in_seq, BUYER, 3, CancelReason.IOC_REMAINDER) in [bare(e) for e in events]
    assert balance(d, BUYER, "USD") == (USD0 - 20_000, 0)


def test_fok_that_cannot_fill_locks_nothing_in_the_end(d: Driver) -> None:
    d.apply(limit(SELLER, SELL, 100, 2))
    events = d.apply(limit(BUYER, BUY, 100, 5, tif=FOK))
    assert bare(events[-1]) == bal(BUYER, "USD", USD0, 0, ORDER)
    assert balance(d, BUYER, "USD") == (USD0, 0)


def test_self_trade_expire_maker_releases_the_resting_orders_lock(d: Driver) -> None:
    d.apply(Deposit("t", 6, SELLER, "USD", 100_000))
    d.apply(limit(SELLER, BUY, 99, 5))  # locks 49 500 USD
    sell = msgspec.structs.replace(limit(SELLER, SELL, 99, 1), stp=SelfTradeMode.EXPIRE_MAKER)
    d.apply(sell)
    assert balance(d, SELLER, "USD") == (100_000, 0)
    assert balance(d, SELLER, "BTC") == (BTC0 - 1_000, 1_000)  # the sell rests: nothing else to meet


def test_self_trade_with_mode_none_settles_like_any_trade_and_pays_both_fees(d: Driver) -> None:
    d.apply(Deposit("t", 6, SELLER, "USD", 100_000))
    d.apply(limit(SELLER, SELL, 99, 2))  # locks 2 000 BTC units
    events = d.apply(msgspec.structs.replace(limit(SELLER, BUY, 99, 2), stp=SelfTradeMode.NONE))
    trades = [e for e in events if isinstance(e, TradeExecuted)]
    assert [(t.maker_account, t.taker_account, t.qty, t.maker_fee, t.taker_fee) for t in trades] == [
        (SELLER, SELLER, 2, 30, 5)]  # fmt: skip
    # the base and the quote went round to the same account, less the taker's fee (5 BTC units, ceil of 25 bps of
    # 2 000) and the maker's (30 USD cents, ceil of 15 bps of 19 800); nothing stays locked
    assert balance(d, SELLER, "BTC") == (BTC0 - 5, 0)
    assert balance(d, SELLER, "USD") == (100_000 - 30, 0)


# ---- replace ------------------------------------------------------------------------------------------------------


def test_replace_that_lowers_the_quantity_releases_the_difference(d: Driver) -> None:
    d.apply(limit(BUYER, BUY, 100, 5))
    buy = d.in_seq
    assert d.apply(replace(BUYER, buy, 100, 2)) == d.stamp(
        [
            replaced(buy, buy, BUYER, 100, 2, kept=True),
            delta(2, BUY, 100, 2),
            bal(BUYER, "USD", USD0 - 20_000, 20_000, ORDER),
        ]
    )


def test_replace_to_a_new_price_locks_the_new_amount(d: Driver) -> None:
    d.apply(limit(BUYER, BUY, 100, 5))
    d.apply(replace(BUYER, d.in_seq, 90, 6))
    assert balance(d, BUYER, "USD") == (USD0 - 54_000, 54_000)


def test_replace_the_account_cannot_cover_is_refused_and_the_order_stays(d: Driver) -> None:
    d.apply(Deposit("t", 6, 3, "USD", 60_000))
    d.apply(limit(3, BUY, 100, 5))  # 50 000 locked, 10 000 free
    buy = d.in_seq
    event = refused(d, replace(3, buy, 100, 7))  # needs 70 000 > 10 000 + 50 000
    assert event == d.stamp(
        [
            cancel_rejected(
                3, RejectReason.INSUFFICIENT_BALANCE, "needs 70000 USD, free 60000 counting the replaced order's lock",
                order_id=buy,
            )
        ]
    )[0]  # fmt: skip
    d.apply(replace(3, buy, 100, 6))  # 60 000 fits exactly
    assert balance(d, 3, "USD") == (0, 60_000)


# ---- market orders --------------------------------------------------------------------------------------------------


@pytest.fixture
def asks(d: Driver) -> Driver:
    """2 lots at 100 and 3 at 105, from the seller; no trade yet."""
    d.run(limit(SELLER, SELL, 100, 2), limit(SELLER, SELL, 105, 3))
    return d


def test_market_buy_by_quantity_locks_exactly_what_the_book_will_cost(asks: Driver) -> None:
    # 4 lots: 2 x 100 + 2 x 105 ticks, x 100 = 41 000 USD units
    asks.apply(Deposit("t", 6, 3, "USD", 40_999))
    event = refused(asks, market(3, BUY, 4))
    assert isinstance(event, OrderRejected) and event.detail == "needs 41000 USD, free 40999"
    asks.apply(Deposit("t", 7, 3, "USD", 1))
    asks.apply(market(3, BUY, 4))
    assert balance(asks, 3, "USD") == (0, 0)
    assert balance(asks, 3, "BTC") == (4_000 - 10, 0)  # taker fee 25 bps of 4 000


def test_market_sell_locks_its_quantity_and_releases_the_unfilled_rest(d: Driver) -> None:
    d.apply(limit(BUYER, BUY, 100, 2))
    d.apply(market(SELLER, SELL, 5))
    assert balance(d, SELLER, "BTC") == (BTC0 - 2_000, 0)


def quote_buy(account: int, quote_qty: int, *, qty: int = 0, side: Side = BUY, as_limit: bool = False) -> PlaceOrder:
    cmd = place(account, side, LIMIT if as_limit else MARKET, IOC, 100 if as_limit else 0, qty)
    return msgspec.structs.replace(cmd, quote_qty=quote_qty)


def test_market_buy_by_quote_amount_buys_what_the_amount_pays_for_and_releases_the_rest(asks: Driver) -> None:
    # 30 000: 2 lots at 100 (20 000); the 10 000 left buy no lot at 105 (10 500)
    events = asks.apply(quote_buy(BUYER, 30_000))
    placed = msgspec.structs.replace(accepted(asks.in_seq, BUYER, BUY, 0, 2, type=MARKET, tif=IOC), quote_qty=30_000)
    assert events[0] == asks.stamp([placed])[0]
    assert sum(e.qty for e in events if isinstance(e, TradeExecuted)) == 2
    assert balance(asks, BUYER, "USD") == (USD0 - 20_000, 0)


def test_market_buy_by_quote_amount_beyond_the_book_fills_what_is_there_and_cancels_the_rest(asks: Driver) -> None:
    asks.apply(limit(BUYER, BUY, 99, 1))
    asks.apply(limit(SELLER, SELL, 99, 1))  # last trade 99: the band lets a market buy reach 108
    asks.apply(quote_buy(BUYER, 100_000))
    # 2 x 100 + 3 x 105 = 51 500 for 5 lots; 48 500 left buy 4 lots at 108 beyond the book: qty 9, 4 canceled
    assert balance(asks, BUYER, "USD") == (USD0 - 9_900 - 51_500, 0)
    assert not asks.engine.matchers[SYM].book.asks.levels


@pytest.fixture
def bids(d: Driver) -> Driver:
    """2 lots bid at 100 and 3 at 95, from the buyer; no trade yet."""
    d.run(limit(BUYER, BUY, 100, 2), limit(BUYER, BUY, 95, 3))
    return d


def quote_sell(account: int, quote_qty: int, *, qty: int = 0, as_limit: bool = False) -> PlaceOrder:
    return quote_buy(account, quote_qty, qty=qty, side=SELL, as_limit=as_limit)


def test_market_sell_by_quote_amount_sells_the_most_lots_whose_proceeds_fit_and_locks_their_base(
    bids: Driver,
) -> None:
    # 40 000: 2 lots at 100 (20 000), then 2 of the 3 at 95 (19 000); a third at 95 would make 48 500
    events = bids.apply(quote_sell(SELLER, 40_000))
    placed = msgspec.structs.replace(accepted(bids.in_seq, SELLER, SELL, 0, 4, type=MARKET, tif=IOC), quote_qty=40_000)
    assert events[0] == bids.stamp([placed])[0]
    trades = [e for e in events if isinstance(e, TradeExecuted)]
    assert [(t.price, t.qty) for t in trades] == [(100, 2), (95, 2)]
    proceeds = sum(t.price * t.qty * 100 for t in trades)
    assert proceeds == 39_000  # within the 40 000
    assert balance(bids, SELLER, "BTC") == (BTC0 - 4_000, 0)
    assert balance(bids, SELLER, "USD") == (proceeds - sum(t.taker_fee for t in trades), 0)
    assert [(o.price, o.leaves) for o in bids.engine.matchers[SYM].book.bids.levels[95]] == [(95, 1)]


def test_market_sell_by_quote_amount_beyond_the_bids_sells_what_is_there_and_nothing_more(bids: Driver) -> None:
    # the bids pay 20 000 + 28 500 for 5 lots; no lot beyond them counts, so it locks (and sells) 5 lots only
    events = bids.apply(quote_sell(SELLER, 1_000_000))
    assert isinstance(events[0], OrderAccepted) and events[0].qty == 5
    assert not [e for e in events if isinstance(e, OrderCanceled)]  # all 5 filled: no remainder to cancel
    assert balance(bids, SELLER, "BTC") == (BTC0 - 5_000, 0)
    assert not bids.engine.matchers[SYM].book.bids.levels


def test_market_sell_by_quote_amount_stops_at_its_own_bid_as_self_trade_prevention_will(bids: Driver) -> None:
    bids.run(Deposit("t", 6, SELLER, "USD", 10_100), limit(SELLER, BUY, 101, 1))
    # the seller's own bid is on the touch: EXPIRE_TAKER stops there, so the amount can sell nothing
    event = refused(bids, quote_sell(SELLER, 40_000))
    assert isinstance(event, OrderRejected)
    assert (event.reason, event.detail) == (RejectReason.QTY_NOT_POSITIVE, "quote_qty=40000 sells qty=0")


@pytest.mark.parametrize(
    ("book", "cmd", "reason", "detail"),
    [
        ("asks", quote_buy(BUYER, 10_000, as_limit=True), RejectReason.INVALID_FIELD,
         "quote_qty is for market orders only"),
        ("asks", quote_buy(BUYER, 10_000, qty=1), RejectReason.INVALID_FIELD, "give qty or quote_qty, not both"),
        ("asks", quote_buy(BUYER, -5), RejectReason.QTY_NOT_POSITIVE, "quote_qty=-5"),
        ("asks", quote_buy(BUYER, 4_999), RejectReason.NOTIONAL_BELOW_MIN, "quote_qty=4999 min_notional=5000"),
        ("asks", quote_buy(BUYER, 9_999), RejectReason.QTY_NOT_POSITIVE, "quote_qty=9999 buys qty=0"),
        ("asks", quote_buy(3, 10_000), RejectReason.INSUFFICIENT_BALANCE, "needs 10000 USD, free 0"),
        ("bids", quote_sell(SELLER, 10_000, as_limit=True), RejectReason.INVALID_FIELD,
         "quote_qty is for market orders only"),
        ("bids", quote_sell(SELLER, 10_000, qty=1), RejectReason.INVALID_FIELD, "give qty or quote_qty, not both"),
        ("bids", quote_sell(SELLER, -5), RejectReason.QTY_NOT_POSITIVE, "quote_qty=-5"),
        ("bids", quote_sell(SELLER, 4_999), RejectReason.NOTIONAL_BELOW_MIN, "quote_qty=4999 min_notional=5000"),
        ("bids", quote_sell(SELLER, 9_999), RejectReason.QTY_NOT_POSITIVE, "quote_qty=9999 sells qty=0"),
        ("bids", quote_sell(3, 10_000), RejectReason.INSUFFICIENT_BALANCE, "needs 1000 BTC, free 0"),
    ],
    ids=[f"{side}-{case}" for side in ("buy", "sell")
         for case in ("limit", "with-qty", "negative", "below-min-notional", "no-lot", "unfunded")],
)  # fmt: skip
def test_market_order_by_quote_amount_when_invalid_is_rejected(
    request: pytest.FixtureRequest, book: str, cmd: PlaceOrder, reason: RejectReason, detail: str
) -> None:
    event = refused(request.getfixturevalue(book), cmd)
    assert isinstance(event, OrderRejected) and (event.reason, event.detail) == (reason, detail)


def test_market_sell_by_quote_amount_on_an_empty_book_is_rejected(d: Driver) -> None:
    event = refused(d, quote_sell(SELLER, 10_000))
    assert isinstance(event, OrderRejected)
    assert (event.reason, event.detail) == (RejectReason.QTY_NOT_POSITIVE, "quote_qty=10000 sells qty=0")


# ---- state ----------------------------------------------------------------------------------------------------------


def test_locks_and_fee_rates_survive_a_snapshot_and_continue_identically(d: Driver) -> None:
    d.run(
        SetFeeRates("t", 6, SELLER, 3, 4),
        limit(BUYER, BUY, 100, 5),
        limit(SELLER, SELL, 101, 5),
        limit(SELLER, SELL, 102, 2),
    )
    restored = Engine.restore(SPECS, d.engine.snapshot(), ASSETS)
    assert restored.state_hash() == d.engine.state_hash()
    tail: list[Command] = [limit(BUYER, BUY, 102, 6), market(SELLER, SELL, 3), cancel_all(BUYER)]
    resumed = Driver(SPECS, restored)
    assert [encode(e) for c in tail for e in resumed.apply(c)] == [encode(e) for c in tail for e in d.apply(c)]
    assert restored.state_hash() == d.engine.state_hash()


def test_engine_refuses_a_symbol_whose_assets_the_venue_does_not_list() -> None:
    with pytest.raises(Exception, match="trades asset USD, which the venue does not list"):
        Engine(SPECS, (AssetSpec("BTC", 8),))
