"""The bots' decisions: market makers, noise takers and momentum traders.

A bot decides from what it is shown (``MarketView``), what it holds (its fills) and its own random generator,
never from the clock: the simulator calls ``decide`` at the bot's pace and sends what it returns, then tells the
bot the venue's answer (``settle``) and its accounts' order reports (``on_report``). The same seed, the same
configuration and the same market give the same decisions. Sizes are in units of a symbol's minimum notional, so
that they fit any venue's filters, and every bot keeps each account's position within a few hundred units: it
stays solvent on the funding the simulator gives its accounts (sim/accounts.py). Positions are counted per account
(a bot that trades from several must not have one account buy everything and another sell it) and per run.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from sim.grid import SymbolRules
from sim.marketdata import MarketView
from sim.orders import Action, Order, Outcome, Place, Replace, Report

BPS = Decimal(10_000)
UNIT_MIN_NOTIONALS = 20  # a size unit is this many minimum notionals (100 USDT on BTCUSDT)
OPEN = frozenset({"NEW", "PARTIALLY_FILLED"})
# A taker trades only into a best price within this of the last trade: the simulated market moves by steps of tens
# of bps (jumps of up to 200), so a touch much further away is an order the market makers did not put there (a
# user's bid far under the market, left alone when the makers' quotes are gone, as after a restart), which no trader
# who looks at the book would sell into
MAX_TOUCH_BPS = Decimal(500)


def unit_notional(rules: SymbolRules, price: Decimal) -> Decimal:
    """The quote amount bots size their orders in, for a symbol."""
    if rules.min_notional > 0:
        return rules.min_notional * UNIT_MIN_NOTIONALS
    return price * rules.min_qty * 100  # no NOTIONAL filter: a hundred minimum lots


def _dec(value: float, places: int = 4) -> Decimal:
    """A random draw as an exact decimal (rounded first, so that sizes are reproducible and short)."""
    return Decimal(repr(round(value, places)))


class Bot:
    kind = "bot"
    position_units = 200  # an account's position (in size units of quote value) past which it is only traded down

    def __init__(self, name: str, rng: random.Random, rules: dict[str, SymbolRules], slots: int, prefix: str) -> None:
        self.name = name
        self.rng = rng
        self.rules = rules
        self.symbols = list(rules)
        self.slots = slots  # how many accounts it trades from
        self.prefix = prefix  # of its client order ids
        # per account (slot) and symbol: base bought minus sold in this run
        self.positions = [dict.fromkeys(self.symbols, Decimal(0)) for _ in range(slots)]
        self.reset_needed = False  # its view of its open orders may be wrong: cancel them all and start again
        self._ids = itertools.count(1)
        self._round_robin = itertools.cycle(range(slots))

    def client_id(self) -> str:
        return f"{self.prefix}{next(self._ids)}"

    @staticmethod
    def near(touch: Decimal, ref: Decimal) -> bool:
        """Whether a best price is close enough to the last trade for a taker to trade into it."""
        return abs(touch - ref) * BPS <= MAX_TOUCH_BPS * ref

    def next_slot(self) -> int:
        return next(self._round_robin)

    def limit(self, symbol: str, price: Decimal) -> Decimal:
        """The position (base) of one account past which the bot only reduces it."""
        return unit_notional(self.rules[symbol], price) * self.position_units / price

    def decide(self, view: MarketView) -> Action | None:
        raise NotImplementedError

    def settle(self, action: Action, outcome: Outcome) -> None:
        """The venue's answer to the bot's last action."""

    def on_report(self, report: Report, slot: int = 0) -> None:
        """An order report of the account in ``slot``."""
        position = self.positions[slot]
        if report.fill_qty and report.symbol in position:
            position[report.symbol] += report.fill_qty if report.side == "BUY" else -report.fill_qty

    def forget_orders(self) -> None:
        """Its orders were all canceled (at a reset)."""
        self.reset_needed = False


@dataclass(frozen=True, slots=True)
class Quote:
    client_id: str
    price: Decimal


class MarketMaker(Bot):
    """Quotes ``levels`` prices each side around the fair value, skewed against its position, and moves the quote
    that is furthest from where it should be (one request per decision) as the fair value moves."""

    kind = "maker"
    half_spread_bps = Decimal(5)  # the first level's distance from the (skewed) fair value
    level_bps = Decimal(5)  # between levels
    requote_bps = Decimal(2)  # a quote this close to its target stays
    size_units = (2.0, 8.0)  # a level's size, more for deeper levels

    def __init__(self, name: str, rng: random.Random, rules: dict[str, SymbolRules], slots: int, prefix: str,
                 levels: int = 3) -> None:  # fmt: skip
        super().__init__(name, rng, rules, slots, prefix)
        self.levels = levels
        self.keys = [(s, side, level) for s in self.symbols for level in range(levels) for side in ("BUY", "SELL")]
        # each quote always goes through the same account (a replace must be sent by the order's owner), and a level's
        # bid and ask through the same one, so that each account buys as much as it sells
        self.slot_of = {key: i // 2 % slots for i, key in enumerate(self.keys)}
        self.quotes: dict[tuple[str, str, int], Quote] = {}
        self._sent: dict[str, tuple[str, str, int]] = {}  # client id of the order in flight -> its quote

    def target(self, view: MarketView, key: tuple[str, str, int]) -> Decimal:
        symbol, side, level = key
        rules, fair = self.rules[symbol], view.fair[symbol]
        # long: both quotes move down (sell sooner, buy later); at most 80% of the half spread, so they never cross
        position = self.positions[self.slot_of[key]][symbol]
        lean = max(Decimal(-1), min(Decimal(1), position / self.limit(symbol, fair)))
        center = fair * (1 - lean * self.half_spread_bps * Decimal("0.8") / BPS)
        offset = (self.half_spread_bps + self.level_bps * level) / BPS
        return rules.bid_price(center * (1 - offset)) if side == "BUY" else rules.ask_price(center * (1 + offset))

    def decide(self, view: MarketView) -> Action | None:
        size = self.rng.uniform(*self.size_units)  # drawn at every decision: the draws do not depend on the market
        worst: tuple[str, str, int] | None = None
        worst_bps = self.requote_bps
        for key in self.keys:
            if key[0] not in view.fair:
                continue
            quote = self.quotes.get(key)
            if quote is None:
                worst, worst_bps = key, Decimal("Infinity")
                break
            target = self.target(view, key)
            off = abs(quote.price - target) / target * BPS
            if off > worst_bps and quote.price != target:
                worst, worst_bps = key, off
        if worst is None:
            return None
        price = self.target(view, worst)
        for _ in self.keys:
            # a quote of its own on the other side in the way (it has not followed the fair value yet): move that
            # one first, or the bot would trade with itself
            crossing = self._crossing(worst, price)
            if crossing is None:
                break
            worst, price = crossing, self.target(view, crossing)
        symbol, side, level = worst
        rules = self.rules[symbol]
        notional = unit_notional(rules, price) * _dec(size) * (1 + Decimal(level) / 2)
        order = Order(symbol, side, "LIMIT", self.client_id(), qty=rules.qty_for(notional, price), price=price,
                      tif="GTC")  # fmt: skip
        self._sent[order.client_id] = worst
        quote = self.quotes.get(worst)
        if quote is None:
            return Place(order, self.slot_of[worst])
        return Replace(quote.client_id, order, self.slot_of[worst])

    def _crossing(self, key: tuple[str, str, int], price: Decimal) -> tuple[str, str, int] | None:
        """This bot's quote on the other side that a quote of ``key`` at ``price`` would trade with."""
        symbol, side, _ = key
        for other, quote in self.quotes.items():
            if (
                other[0] == symbol
                and other[1] != side
                and (quote.price <= price if side == "BUY" else quote.price >= price)
            ):
                return other
        return None

    def settle(self, action: Action, outcome: Outcome) -> None:
        if not isinstance(action, Place | Replace):
            return
        key = self._sent.pop(action.order.client_id, None)
        if key is None:
            return
        placed = Quote(action.order.client_id, action.order.price or Decimal(0))
        if outcome.transport:
            # no answer: whether the order (or the replace) went through is unknown, so the quotes this bot
            # believes in may not be the ones resting; cancel them all and quote afresh
            self.quotes[key] = placed
            self.reset_needed = True
        elif outcome.ok:
            if outcome.status in OPEN:
                self.quotes[key] = placed
            else:  # filled (or expired) at once: nothing rests
                self.quotes.pop(key, None)
        elif outcome.gone:  # the replaced order had filled and nothing new was placed
            self.quotes.pop(key, None)
        # refused: the old quote (if any) still rests, or is gone and the next replace finds that out

    def on_report(self, report: Report, slot: int = 0) -> None:
        super().on_report(report, slot)
        if report.done:
            for key, quote in list(self.quotes.items()):
                if quote.client_id == report.client_id:
                    del self.quotes[key]

    def forget_orders(self) -> None:
        super().forget_orders()
        self.quotes.clear()


class NoiseTaker(Bot):
    """Random marketable orders of random size: market orders by quantity or by quote amount, and limit IOC/FOK
    orders priced through the best price; buys and sells alike, except that a position past its limit is only
    traded down. It trades only against a book side that has orders, as a taker that looks before it trades."""

    kind = "taker"
    size_units = (0.5, 4.0)
    position_units = 100

    def decide(self, view: MarketView) -> Action | None:
        rng = self.rng
        # the same draws at every decision, whatever the market shows
        symbol = rng.choice(self.symbols)
        buy = rng.random() < 0.5
        style = rng.random()
        size = _dec(rng.uniform(*self.size_units))
        through_bps = _dec(rng.uniform(5, 40), 1)
        slot = self.next_slot()
        rules, bid, ask = self.rules[symbol], view.bid.get(symbol), view.ask.get(symbol)
        # sized by the last trade, else the middle of the book
        ref = view.last.get(symbol) or ((bid + ask) / 2 if bid and ask else bid or ask)
        if ref is None:
            return None  # an empty book that never traded: nothing to take
        limit, position = self.limit(symbol, ref), self.positions[slot][symbol]
        if position > limit:
            buy = False
        elif position < -limit:
            buy = True
        touch = ask if buy else bid
        if touch is None or not self.near(touch, ref):
            return None  # nobody to trade with on that side (yet), or far off the market: a taker looks first
        notional = unit_notional(rules, ref) * size
        side = "BUY" if buy else "SELL"
        if 0.4 <= style < 0.6:
            order = Order(symbol, side, "MARKET", self.client_id(), quote_qty=rules.quote_amount(notional))
        elif style < 0.4:
            order = Order(symbol, side, "MARKET", self.client_id(), qty=rules.qty_for(notional, touch))
        else:  # marketable: priced through the touch
            through = through_bps / BPS
            price = rules.ask_price(touch * (1 + through)) if buy else rules.bid_price(touch * (1 - through))
            order = Order(symbol, side, "LIMIT", self.client_id(), qty=rules.qty_for(notional, price), price=price,
                          tif="FOK" if style >= 0.9 else "IOC")  # fmt: skip
        return Place(order, slot)


class Momentum(Bot):
    """Buys after the public trades have moved up, sells after they have moved down: the move from the oldest of
    the last ``lookback`` prices it saw to the latest, past ``threshold_bps``; after each trade it waits for a
    fresh move. Market orders, within its position limit."""

    kind = "momentum"
    lookback = 8
    threshold_bps = Decimal(15)
    size_units = (1.0, 4.0)
    position_units = 150

    def __init__(self, name: str, rng: random.Random, rules: dict[str, SymbolRules], slots: int, prefix: str) -> None:
        super().__init__(name, rng, rules, slots, prefix)
        self.seen: dict[str, deque[Decimal]] = {s: deque(maxlen=self.lookback) for s in self.symbols}

    def decide(self, view: MarketView) -> Action | None:
        size = _dec(self.rng.uniform(*self.size_units))
        slot = self.next_slot()
        best: tuple[Decimal, str, Decimal] | None = None  # (move, symbol, last)
        for symbol in self.symbols:
            last = view.last.get(symbol)
            if last is None:
                continue
            window = self.seen[symbol]
            window.append(last)
            move = (last / window[0] - 1) * BPS
            if abs(move) >= self.threshold_bps and (best is None or abs(move) > abs(best[0])):
                best = (move, symbol, last)
        if best is None:
            return None
        move, symbol, last = best
        buy = move > 0
        limit, position = self.limit(symbol, last), self.positions[slot][symbol]
        if (buy and position >= limit) or (not buy and position <= -limit):
            return None
        touch = (view.ask if buy else view.bid).get(symbol)
        if touch is None or not self.near(touch, last):
            return None  # nobody to trade with on that side, or only far off the market
        self.seen[symbol].clear()
        self.seen[symbol].append(last)
        rules = self.rules[symbol]
        qty = rules.qty_for(unit_notional(rules, last) * size, last)
        return Place(Order(symbol, "BUY" if buy else "SELL", "MARKET", self.client_id(), qty=qty), slot)
