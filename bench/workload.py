"""A deterministic, realistic command mix for benchmarking the engine core.

The generator drives a real ``Engine`` (the *shadow*) while it writes commands, so it always knows the book:
limit orders are priced from the current touch, and every cancel or amend names an order that is resting at
that moment. The measured engine is then restored from the shadow's snapshot taken right before the measured
window and fed exactly the same commands, so it goes through exactly the same states (checked afterwards by
comparing state hashes and event counts).

Mix per command (defaults, see ``Mix``): 50% passive limit orders near the touch, 30% cancels of resting orders,
15% marketable orders (half MARKET IOC, half LIMIT IOC priced through the touch), 5% amends (cancel-replace: 80%
a quantity reduction at the same price, which keeps priority, 20% a price move of a few ticks). A small feedback
term moves at most ``Mix.feedback`` of probability between "limit" and "cancel" so that each book stays near its
target size; the realised mix is counted and reported.

Money: ``accounts`` accounts are created and funded before the prefill, each with far more of every asset than its
orders need, so that risk refuses nothing and the matching work is the same with risk on or off; the engine
locks, settles and charges fees (10 bps each side) on every order and fill all the same. The measured window can
therefore also run on a matching-only engine (``risk=False``) restored from the same snapshot, which is what the
benchmark's "cost of risk" ratio compares against.

Everything is seeded (``random.Random(seed)``): the same config always gives the same bytes.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from engine.book import Book, Order
from engine.core import Engine
from engine.snapshot import decode_state, encode_state
from wire.codec import JournalBatch, decode_batch, encode
from wire.commands import CancelOrder, Command, CreateAccount, Deposit, PlaceOrder, ReplaceOrder
from wire.enums import OrderType, Side, TimeInForce
from wire.events import Event, OrderAccepted, OrderReplaced
from wire.venue import AssetSpec, SymbolSpec

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC, IOC = TimeInForce.GTC, TimeInForce.IOC

T0_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z: the first sequencer stamp
STAMP_STEP_NS = 2_000  # one command every 2 us of sequencer time
GATEWAYS = ("gw-rest-1", "gw-rest-2", "gw-ws-1", "gw-fix-1")

# symbol, base, tick size, lot size, reference price in ticks (where the book starts)
_SYMBOL_TABLE: tuple[tuple[str, str, str, str, int], ...] = (
    ("BTCUSDT", "BTC", "0.01", "0.0001", 6_000_000),
    ("ETHUSDT", "ETH", "0.01", "0.001", 300_000),
    ("SOLUSDT", "SOL", "0.01", "0.01", 15_000),
    ("BNBUSDT", "BNB", "0.01", "0.01", 60_000),
    ("XRPUSDT", "XRP", "0.0001", "1", 6_000),
    ("ADAUSDT", "ADA", "0.0001", "1", 4_500),
    ("DOGEUSDT", "DOGE", "0.00001", "1", 15_000),
    ("AVAXUSDT", "AVAX", "0.01", "0.01", 3_000),
    ("DOTUSDT", "DOT", "0.001", "0.1", 6_000),
    ("LINKUSDT", "LINK", "0.01", "0.01", 1_500),
)
MAX_SYMBOLS = len(_SYMBOL_TABLE)
DECIMALS = 8  # every asset's units are 10**-8 of it, as on the repository's venue
UNIT = Decimal(1).scaleb(-DECIMALS)
FUNDING = 10**17  # units of every asset per account: 10**9 of it, more than any account's orders ever lock
FEE_BPS = 10


def bench_assets(n: int) -> tuple[AssetSpec, ...]:
    return tuple(AssetSpec(name, DECIMALS) for name in sorted({"USDT", *(row[1] for row in _SYMBOL_TABLE[:n])}))


def bench_specs(n: int) -> tuple[SymbolSpec, ...]:
    """``n`` (1..10) USDT-quoted symbols, made in code so the benchmark does not depend on config/venue.toml."""
    if not 1 <= n <= MAX_SYMBOLS:
        raise ValueError(f"between 1 and {MAX_SYMBOLS} symbols, not {n}")
    specs = []
    for symbol, base, tick, lot, ref in _SYMBOL_TABLE[:n]:
        tick_size, lot_size = Decimal(tick), Decimal(lot)
        min_notional = -(-Decimal("0.1") // (tick_size * lot_size))  # 0.1 USDT, rounded up to whole units
        specs.append(
            SymbolSpec(
                symbol=symbol,
                base=base,
                quote="USDT",
                tick_size=tick_size,
                lot_size=lot_size,
                min_qty=1,
                max_qty=10_000_000,
                min_notional=int(min_notional),
                max_price=ref * 100,
                band_bps=2000,
                base_per_lot=int(lot_size / UNIT),
                quote_per_tick_lot=int(tick_size * lot_size / UNIT),
                maker_fee_bps=FEE_BPS,
                taker_fee_bps=FEE_BPS,
            )
        )
    return tuple(specs)


def reference_price(symbol: str) -> int:
    for row in _SYMBOL_TABLE:
        if row[0] == symbol:
            return row[4]
    raise KeyError(symbol)


@dataclass(frozen=True, slots=True)
class Mix:
    limit: float = 0.50
    cancel: float = 0.30
    marketable: float = 0.15
    amend: float = 0.05
    market_share: float = 0.5  # of marketable orders, the share sent as MARKET (the rest: crossing LIMIT IOC)
    reduce_share: float = 0.8  # of amends, the share that only lowers the quantity (keeps priority)
    feedback: float = 0.10  # the most probability moved between limit and cancel to hold the book size
    feedback_gain: float = 0.5  # probability moved per unit of relative deviation from the target size


@dataclass(frozen=True, slots=True)
class WorkloadConfig:
    symbols: int = 1
    seed: int = 20_260_101
    resting: int = 10_000  # target resting orders in the whole engine (split evenly between the symbols)
    warmup: int = 20_000  # mixed commands after the prefill, before the measured window
    measured: int = 200_000  # commands in the measured window
    batch: int = 256  # commands per journal batch
    accounts: int = 1_000
    mix: Mix = field(default_factory=Mix)


@dataclass(frozen=True, slots=True)
class Workload:
    config: WorkloadConfig
    specs: tuple[SymbolSpec, ...]
    assets: tuple[AssetSpec, ...]
    snapshot: bytes  # the engine's state right before the measured window (risk on)
    first_in_seq: int  # in_seq of the first measured command
    batches: list[bytes]  # the measured commands as encoded JournalBatch frames
    n_commands: int
    n_events: int  # events the measured window must produce
    final_hash: str  # Engine.state_hash() after the measured window
    plain_events: int  # the same for a matching-only engine (no balance events)
    plain_hash: str
    kinds: dict[str, int]  # measured commands by kind
    rejects: int  # OrderRejected / CancelRejected events in the measured window (0 expected)
    trades: int
    resting_start: int
    resting_end: int
    resting_min: int
    resting_max: int


class FlowGenerator:
    def __init__(self, config: WorkloadConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.specs = bench_specs(config.symbols)
        self.assets = bench_assets(config.symbols)
        self.engine = Engine(self.specs, self.assets)
        self.symbols = [s.symbol for s in self.specs]
        self.books: dict[str, Book] = {name: m.book for name, m in self.engine.matchers.items()}
        self.ref: dict[str, int] = {name: reference_price(name) for name in self.symbols}
        # per symbol, ids that were resting when last seen; dead ones are dropped lazily when drawn
        self.live: dict[str, list[int]] = {name: [] for name in self.symbols}
        self.per_book_target = max(1, config.resting // len(self.symbols))
        self.reqs = dict.fromkeys(GATEWAYS, 0)
        self.oid_counter = 0
        self.in_seq = 0
        self.kinds: Counter[str] = Counter()
        self.rejects = 0
        self.trades = 0
        self.n_events = 0

    # ---- helpers -------------------------------------------------------------------------------------------

    def _src_req(self) -> tuple[str, int]:
        src = GATEWAYS[self.rng.randrange(len(GATEWAYS))]
        self.reqs[src] += 1
        return src, self.reqs[src]

    def _client_oid(self) -> str:
        self.oid_counter += 1
        return f"b{self.oid_counter:x}"

    def _account(self) -> int:
        return 1 + self.rng.randrange(self.config.accounts)

    def _qty(self) -> int:
        # a heavy-ish tail: median ~20 lots, a few orders in the thousands
        return max(1, min(5_000, int(self.rng.lognormvariate(3.0, 1.0))))

    def _touch(self, symbol: str) -> tuple[int | None, int | None]:
        book = self.books[symbol]
        bid, ask = book.bids.best(), book.asks.best()
        return (bid.price if bid is not None else None), (ask.price if ask is not None else None)

    def _pick_resting(self, symbol: str) -> Order | None:
        ids, orders, rng = self.live[symbol], self.books[symbol].orders, self.rng
        while ids:
            i = rng.randrange(len(ids))
            order = orders.get(ids[i])
            if order is not None:
                return order
            ids[i] = ids[-1]
            ids.pop()
        return None

    def _passive_price(self, symbol: str, side: Side) -> int:
        """A price on ``side`` at or behind the touch (sometimes improving it inside the spread); never crosses."""
        rng = self.rng
        bid, ask = self._touch(symbol)
        depth = min(int(rng.expovariate(1 / 5)), 80)  # mostly within a few ticks of the touch
        if side is BUY:
            if bid is not None and ask is not None and ask - bid > 1 and rng.random() < 0.2:
                price = bid + 1
            elif bid is not None:
                price = bid - depth
            elif ask is not None:
                price = ask - 1 - depth
            else:
                price = self.ref[symbol] - 1 - depth
            if ask is not None and price >= ask:
                price = ask - 1
        else:
            if bid is not None and ask is not None and ask - bid > 1 and rng.random() < 0.2:
                price = ask - 1
            elif ask is not None:
                price = ask + depth
            elif bid is not None:
                price = bid + 1 + depth
            else:
                price = self.ref[symbol] + 1 + depth
            if bid is not None and price <= bid:
                price = bid + 1
        return max(1, price)

    # ---- commands ------------------------------------------------------------------------------------------

    def _limit(self, symbol: str) -> Command:
        side = BUY if self.rng.random() < 0.5 else SELL
        src, req = self._src_req()
        price = self._passive_price(symbol, side)
        self.kinds["limit"] += 1
        return PlaceOrder(src, req, self._account(), symbol, side, LIMIT, GTC, price, self._qty(), self._client_oid())

    def _marketable(self, symbol: str) -> Command:
        rng = self.rng
        side = BUY if rng.random() < 0.5 else SELL
        src, req = self._src_req()
        qty = self._qty()
        if rng.random() < self.config.mix.market_share:
            self.kinds["market"] += 1
            return PlaceOrder(src, req, self._account(), symbol, side, MARKET, IOC, 0, qty, self._client_oid())
        bid, ask = self._touch(symbol)
        through = rng.randrange(4)  # 0..3 ticks through the opposite touch
        if side is BUY:
            price = (ask if ask is not None else (bid or self.ref[symbol]) + 1) + through
        else:
            price = max(1, (bid if bid is not None else (ask or self.ref[symbol]) - 1) - through)
        self.kinds["limit_ioc"] += 1
        return PlaceOrder(src, req, self._account(), symbol, side, LIMIT, IOC, price, qty, self._client_oid())

    def _cancel(self, symbol: str) -> Command:
        order = self._pick_resting(symbol)
        if order is None:
            return self._limit(symbol)
        src, req = self._src_req()
        self.kinds["cancel"] += 1
        return CancelOrder(src, req, order.account, symbol, order.order_id, "")

    def _amend(self, symbol: str) -> Command:
        rng = self.rng
        order = self._pick_resting(symbol)
        if order is None:
            return self._limit(symbol)
        src, req = self._src_req()
        if order.leaves >= 2 and rng.random() < self.config.mix.reduce_share:
            self.kinds["amend_reduce"] += 1
            qty = rng.randint(max(1, order.leaves // 4), order.leaves - 1)
            return ReplaceOrder(src, req, order.account, symbol, order.order_id, "", "", order.price, qty)
        # a price move of 1..3 ticks, either way, that stays passive
        bid, ask = self._touch(symbol)
        delta = rng.choice((-3, -2, -1, 1, 2, 3))
        price = max(1, order.price + delta)
        if order.side is BUY and ask is not None and price >= ask:
            price = order.price - 1
        if order.side is SELL and bid is not None and price <= bid:
            price = order.price + 1
        price = max(1, price)
        if price == order.price:
            price += 1 if order.side is SELL else -1
        self.kinds["amend_move"] += 1
        return ReplaceOrder(src, req, order.account, symbol, order.order_id, "", "", price, order.leaves)

    def next_command(self, passive_only: bool) -> Command:
        rng, mix = self.rng, self.config.mix
        symbol = self.symbols[rng.randrange(len(self.symbols))]
        if passive_only:
            return self._limit(symbol)
        size = len(self.books[symbol].orders)
        shift = mix.feedback_gain * (self.per_book_target - size) / self.per_book_target
        shift = max(-mix.feedback, min(mix.feedback, shift))
        r = rng.random()
        p_limit = mix.limit + shift
        p_cancel = p_limit + mix.cancel - shift
        p_market = p_cancel + mix.marketable
        if r < p_limit:
            return self._limit(symbol)
        if r < p_cancel:
            return self._cancel(symbol)
        if r < p_market:
            return self._marketable(symbol)
        return self._amend(symbol)

    def step(self, cmd: Command, ts: int = 0) -> list[Event]:
        """Apply ``cmd`` to the shadow engine (stamped ``ts``, or at the workload's own pace) and remember the order
        id it may have left resting; returns its events."""
        engine = self.engine
        self.in_seq += 1
        new_id = self.in_seq  # the id of the order this command may create (engine.matching, "Order ids")
        events = engine.apply(self.in_seq, ts or T0_NS + self.in_seq * STAMP_STEP_NS, cmd)
        self.n_events += len(events)
        first = events[0] if events else None  # a command that creates an order says so in its first event
        created = (isinstance(first, OrderAccepted) and first.order_id == new_id) or (
            isinstance(first, OrderReplaced) and first.new_order_id == new_id
        )
        if created:
            rests = isinstance(cmd, ReplaceOrder) or (isinstance(cmd, PlaceOrder) and cmd.tif is GTC)
            if rests:
                self.live[cmd.symbol].append(new_id)  # type: ignore[union-attr]
        for ev in events:
            name = type(ev).__name__
            if name in ("OrderRejected", "CancelRejected"):
                self.rejects += 1
            elif name == "TradeExecuted":
                self.trades += 1
        return events

    def resting(self) -> int:
        return sum(len(b.orders) for b in self.books.values())


def build(config: WorkloadConfig) -> Workload:
    """Prefill to ``config.resting`` orders, run ``config.warmup`` mixed commands, then generate the window."""
    gen = FlowGenerator(config)
    # 0. accounts, each funded with plenty of every asset
    for account in range(1, config.accounts + 1):
        gen.step(CreateAccount("admin", account, account))
        for asset in gen.assets:
            gen.step(Deposit("admin", account, account, asset.name, FUNDING))
    # 1. prefill: passive limit orders only, until the books hold the target
    while gen.resting() < config.resting:
        gen.step(gen.next_command(passive_only=True))
    # 2. warm-up: the full mix, so that the measured window starts from a book shaped by it (and a last price)
    for _ in range(config.warmup):
        gen.step(gen.next_command(passive_only=False))
    snapshot = gen.engine.snapshot()
    first_in_seq = gen.in_seq + 1
    gen.kinds.clear()
    gen.rejects = gen.trades = gen.n_events = 0
    resting_start = lo = hi = gen.resting()
    # 3. the measured window, cut into journal batches as the sequencer would
    batches: list[bytes] = []
    done = 0
    while done < config.measured:
        n = min(config.batch, config.measured - done)
        first = gen.in_seq + 1
        cmds: list[Command] = []
        for _ in range(n):
            cmd = gen.next_command(passive_only=False)
            gen.step(cmd)
            cmds.append(cmd)
        stamps = [T0_NS + (first + i) * STAMP_STEP_NS for i in range(n)]
        batches.append(encode(JournalBatch(first, stamps, cmds)))
        done += n
        size = gen.resting()
        lo, hi = min(lo, size), max(hi, size)
    plain_events, plain_hash = _matching_only(gen.specs, gen.assets, snapshot, batches)
    return Workload(
        config=config,
        specs=gen.specs,
        assets=gen.assets,
        snapshot=snapshot,
        first_in_seq=first_in_seq,
        batches=batches,
        n_commands=done,
        n_events=gen.n_events,
        final_hash=gen.engine.state_hash(),
        plain_events=plain_events,
        plain_hash=plain_hash,
        kinds=dict(sorted(gen.kinds.items())),
        rejects=gen.rejects,
        trades=gen.trades,
        resting_start=resting_start,
        resting_end=gen.resting(),
        resting_min=lo,
        resting_max=hi,
    )


def _matching_only(
    specs: tuple[SymbolSpec, ...], assets: tuple[AssetSpec, ...], snapshot: bytes, batches: list[bytes]
) -> tuple[int, str]:
    """The events and final state hash of a matching-only engine over the window (to check its timed runs)."""
    engine = Engine.restore(specs, _without_risk(snapshot), assets)
    n_events = 0
    for raw in batches:
        batch = decode_batch(raw)
        n_events += len(engine.apply_many(batch.first_in_seq, batch.stamps, batch.cmds))
    return n_events, engine.state_hash()


def _without_risk(snapshot: bytes) -> bytes:
    """The same books and balances for a matching-only engine: its orders hold no balances and nothing moves."""
    return encode_state(msgspec.structs.replace(decode_state(snapshot), risk=False))


def fresh_engine(workload: Workload, risk: bool = True) -> Engine:
    """An engine in the state right before the workload's measured window; ``risk=False``: matching only."""
    snapshot = workload.snapshot if risk else _without_risk(workload.snapshot)
    return Engine.restore(workload.specs, snapshot, workload.assets)
