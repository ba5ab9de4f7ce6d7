"""research.replay: a strategy's order inserted into recorded flow is matched by the engine against the real book.

The venue is config/venue.toml's BTCUSDT: a price tick of 0.01 USDT, a lot of 0.00001 BTC (1 000 BTC units),
one tick x one lot = 10 USDT units (USDT and BTC have 8 decimals), 10 bps maker and taker fees of what each side
receives, rounded up. The recorded flow: account 1 offers 5 BTC at 101 and 5 BTC at 102, account 2 bids 5 at 99,
then account 1 cancels its 102 offer (by order id: in_seq 6 of the recording).

The strategy (account 3, 1 000 USDT) buys 7 BTC at market as soon as it sees the second offer, 5 ns later. The
engine fills it at the book's prices, best first: 5 @ 101 and 2 @ 102, before the recorded cancel (stamped 10 ns
after), which then removes the 3 BTC left of the renumbered 102 offer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from research.replay import Market, Recorded, ReplayStrategy, read_journal, replay_with
from sequencer.journal import Journal
from tests.harness import RedisServer
from wire import keys
from wire.codec import JournalBatch, encode
from wire.commands import CancelOrder, Command, CreateAccount, Deposit, PlaceOrder, ReplaceOrder
from wire.enums import OrderType, Side, TimeInForce
from wire.events import Event, OrderAccepted, OrderCanceled, OrderReplaced
from wire.venue import load_venue

T = 1_700_000_000_000_000_000
SYM = "BTCUSDT"
BTC_UNITS = 10**8  # units of 1 BTC or 1 USDT
LOTS = 100_000  # lots in 1 BTC
STRATEGY = 3


def order(account: int, side: Side, price_ticks: int, btc: int) -> PlaceOrder:
    return PlaceOrder("rec", 0, account, SYM, side, OrderType.LIMIT, TimeInForce.GTC, price_ticks, btc * LOTS, "")


RECORDED = [
    Recorded(1, T, CreateAccount("rec", 1, 1)),
    Recorded(2, T, Deposit("rec", 2, 1, "BTC", 100 * BTC_UNITS)),
    Recorded(3, T, CreateAccount("rec", 3, 2)),
    Recorded(4, T, Deposit("rec", 4, 2, "USDT", 100_000 * BTC_UNITS)),
    Recorded(5, T + 1, order(1, Side.SELL, 10_100, 5)),
    Recorded(6, T + 2, order(1, Side.SELL, 10_200, 5)),
    Recorded(7, T + 3, order(2, Side.BUY, 9_900, 5)),
    Recorded(8, T + 10, CancelOrder("rec", 5, 1, SYM, 6, "")),
]


class BuyWhenTwoOffers(ReplayStrategy):
    def __init__(self) -> None:
        self.sent = False
        self.seen_best: tuple[int, int] | None = None

    def on_events(self, market: Market, events: Sequence[Event]) -> Iterable[Command]:
        if self.sent or len(market.depth(SYM, Side.SELL)) < 2:
            return ()
        self.sent = True
        self.seen_best = market.best(SYM, Side.SELL)
        return [PlaceOrder("strat", 1, market.account, SYM, Side.BUY, OrderType.MARKET, TimeInForce.IOC, 0,
                           7 * LOTS, "buy7")]  # fmt: skip


def test_a_marketable_order_fills_at_the_books_prices() -> None:
    strategy = BuyWhenTwoOffers()
    result = replay_with(RECORDED, strategy, load_venue(), account=STRATEGY, funding={"USDT": 1_000 * BTC_UNITS},
                         latency_ns=5)  # fmt: skip
    assert strategy.seen_best == (10_100, 5 * LOTS)
    # the strategy's account and deposit come first (in_seq 1, 2); recorded in_seq n is now n + 2, and the buy
    # (due at T + 7) goes in after recorded 7 (T + 3) and before recorded 8 (T + 10)
    assert result.order_ids == {n: n + 2 for n in range(1, 8)} | {8: 11}
    assert [in_seq for in_seq, _ in result.inserted] == [1, 2, 10]

    fills = [(f.price, f.qty, f.taker_account, f.maker_account, f.taker_order_id) for f in result.fills]
    assert fills == [(10_100, 5 * LOTS, STRATEGY, 1, 10), (10_200, 2 * LOTS, STRATEGY, 1, 10)]
    # taker fee: 10 bps of the BTC received (5 BTC -> 0.005 BTC, 2 BTC -> 0.002 BTC); maker: of the USDT received
    assert [f.taker_fee for f in result.fills] == [500_000, 200_000]
    assert [f.maker_fee for f in result.fills] == [50_500_000, 20_400_000]

    # the recorded cancel named order 6; it is order 8 in this replay and has 3 BTC left
    (canceled,) = [e for e in result.events if isinstance(e, OrderCanceled)]
    assert (canceled.order_id, canceled.account, canceled.leaves) == (8, 1, 3 * LOTS)
    accepted = {e.order_id for e in result.events if isinstance(e, OrderAccepted)}
    assert accepted == {7, 8, 9, 10}

    usdt_spent = (5 * 101 + 2 * 102) * BTC_UNITS
    assert result.engine.accounts.balance(STRATEGY, "USDT") == (1_000 * BTC_UNITS - usdt_spent, 0)
    assert result.engine.accounts.balance(STRATEGY, "BTC") == (7 * BTC_UNITS - 700_000, 0)
    assert result.engine.matchers[SYM].book.side(Side.SELL).best() is None  # both offers gone
    result.engine.check_invariants()


def test_without_the_strategy_the_replay_is_the_recording() -> None:
    """A strategy that never trades changes nothing but the numbering: same trades, same book."""
    idle = replay_with(RECORDED, ReplayStrategy(), load_venue(), account=STRATEGY, funding={"USDT": BTC_UNITS})
    assert idle.fills == [] and [n for n, _ in idle.inserted] == [1, 2]
    (canceled,) = [e for e in idle.events if isinstance(e, OrderCanceled)]
    assert (canceled.order_id, canceled.leaves) == (8, 5 * LOTS)
    assert [(lvl.price, lvl.total) for lvl in idle.engine.matchers[SYM].book.side(Side.SELL).iter_levels()] == [
        (10_100, 5 * LOTS)
    ]


class BidOnce(ReplayStrategy):
    """Rests one bid far below the market on the first event it sees: shifts every later in_seq by one."""

    def __init__(self) -> None:
        self.sent = False

    def on_events(self, market: Market, events: Sequence[Event]) -> Iterable[Command]:
        if self.sent:
            return ()
        self.sent = True
        return [PlaceOrder("strat", 1, market.account, SYM, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 9_000,
                           LOTS, "bid")]  # fmt: skip


def test_a_recorded_replace_follows_its_renumbered_order() -> None:
    """Recorded: offer 5 BTC at 101 (in_seq 3), then replace order 3 with 4 BTC at 101.50 (in_seq 4). In the
    replay the strategy's account, deposit and bid come first (in_seq 1, 2, 3, the bid after the account's
    creation is seen), so the offer is order 6 and the replace must name 6."""
    flow = [
        Recorded(1, T, CreateAccount("rec", 1, 1)),
        Recorded(2, T, Deposit("rec", 2, 1, "BTC", 100 * BTC_UNITS)),
        Recorded(3, T + 1, order(1, Side.SELL, 10_100, 5)),
        Recorded(4, T + 2, ReplaceOrder("rec", 3, 1, SYM, 3, "", "", 10_150, 4 * LOTS)),
    ]
    result = replay_with(flow, BidOnce(), load_venue(), account=STRATEGY, funding={"USDT": 1_000 * BTC_UNITS})
    assert [n for n, _ in result.inserted] == [1, 2, 3]
    assert result.order_ids == {1: 4, 2: 5, 3: 6, 4: 7}
    (replaced,) = [e for e in result.events if isinstance(e, OrderReplaced)]
    assert (replaced.order_id, replaced.new_order_id, replaced.price, replaced.qty) == (6, 7, 10_150, 4 * LOTS)
    book = result.engine.matchers[SYM].book
    assert [(lvl.price, lvl.total) for lvl in book.side(Side.SELL).iter_levels()] == [(10_150, 4 * LOTS)]
    assert [(lvl.price, lvl.total) for lvl in book.side(Side.BUY).iter_levels()] == [(9_000, LOTS)]


def test_the_flow_read_back_from_a_redis_journal(redis_server: RedisServer) -> None:
    """The recording journaled as the sequencer journals it (two batches), read back with read_journal: the same
    commands, and the same replay."""
    r = redis_server.client()
    journal = Journal(r, keys.journal("e0"))
    for batch in (RECORDED[:4], RECORDED[4:]):
        first = batch[0].in_seq
        journal.append(first, encode(JournalBatch(first, [rec.ts for rec in batch], [rec.cmd for rec in batch])))
    assert read_journal(r, "e0") == RECORDED
    strategy = BuyWhenTwoOffers()
    replayed = replay_with(read_journal(r, "e0"), strategy, load_venue(), account=STRATEGY,
                           funding={"USDT": 1_000 * BTC_UNITS}, latency_ns=5)  # fmt: skip
    assert [(f.price, f.qty) for f in replayed.fills] == [(10_100, 5 * LOTS), (10_200, 2 * LOTS)]
    r.close()
