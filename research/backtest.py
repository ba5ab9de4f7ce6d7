"""An event-driven backtester over klines, with the venue's fee schedule, a slippage model and position limits.

A strategy sees the bars one at a time: ``Strategy.next`` runs after bar ``i`` has closed and can read bar ``i``
and earlier, never a later one (``Line`` raises IndexError). The orders it sends are market orders that fill at
the OPEN of bar ``i + 1``; orders sent on the last bar never fill. That is the whole look-ahead rule, and it is
the one ``backtesting.py`` applies with ``trade_on_close=False`` (tests/research/test_backtest_crosscheck.py).
A limit order (``buy(size, limit=p)``) lives for bar ``i + 1`` only: marketable at its open, it takes there like
a market order; otherwise it rests and fills at ``p``, as a maker, if the bar's range reaches ``p``.

Sizes are whole lots (``lot_size`` base units each), as on the venue. Prices are whatever unit the bars are in
(ticks or decimal prices); fill prices are rounded to ``tick`` when one is given. Fees are the venue's: a market
order is a taker, paying ``taker_bps`` of the fill's notional; a limit order that rested pays ``maker_bps``. The
venue takes a buyer's fee in the base asset it receives; here it is charged in quote at the fill price (the same
value at that moment) so that the position stays a whole number of lots. The venue also rounds each fee up to
the asset's unit; cash here is a float, so no rounding is done. Cash is not checked: a strategy may go short or
borrow, only the position limit binds; but at the first close where equity is <= 0 the account is ruined: its
position is closed at that close and every later fill is dropped (metrics["ruined_at_bar"]).

``backtest_signal`` is a vectorized twin for a precomputed +1/0/-1 signal; a test checks it against this loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.backtest_metrics import Trade, compute_metrics, round_trips
from wire.venue import DEFAULT_VENUE, load_venue

FloatArray = npt.NDArray[np.float64]
COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class Fees:
    """Basis points of each fill's notional: market orders and limit orders marketable on arrival pay the taker
    rate, a limit order that rested and was then reached pays the maker rate."""

    maker_bps: int = 0
    taker_bps: int = 0

    @classmethod
    def from_venue(cls, symbol: str = "BTCUSDT", path: Path | str = DEFAULT_VENUE) -> Fees:
        spec = load_venue(path).spec(symbol)
        return cls(maker_bps=spec.maker_fee_bps, taker_bps=spec.taker_fee_bps)

    @property
    def taker_rate(self) -> float:
        return self.taker_bps / 10_000

    @property
    def maker_rate(self) -> float:
        return self.maker_bps / 10_000


@dataclass(frozen=True, slots=True)
class Slippage:
    """How far from the open a market order fills, against the trader: ``bps`` of the open plus ``range_fraction``
    of the high-low range of the bar the order was decided on (known then, so the cost is causal). The price is
    then held inside the fill bar's own high-low range: it must be a price that traded."""

    bps: float = 0.0
    range_fraction: float = 0.0


@dataclass(frozen=True, slots=True)
class Fill:
    bar: int  # index of the bar in which the order filled (at its open, unless a limit order rested)
    time: pd.Timestamp
    qty: int  # lots, signed: > 0 bought
    price: float
    fee: float  # quote
    maker: bool = False  # a limit order that rested at the open and was reached during the bar


@dataclass(slots=True)
class Result:
    equity: pd.Series  # marked at each bar's close
    position: pd.Series  # lots held through each bar (after its open's fill)
    fills: list[Fill]
    trades: list[Trade]  # round trips: flat (or flipped) to flat (or flipped)
    metrics: dict[str, float] = field(default_factory=dict)

    def trades_frame(self) -> pd.DataFrame:
        return pd.DataFrame([t._asdict() for t in self.trades], columns=list(Trade._fields))

    def plot(self, path: Path | str, title: str = "") -> None:
        # imported here: matplotlib takes a while to import, and most runs (the model's, the bench) never plot
        from research.backtest_plot import plot_equity  # noqa: PLC0415

        plot_equity(self.equity, path, title)


def normalize_bars(bars: pd.DataFrame) -> pd.DataFrame:
    """Lower-case OHLCV columns (backtesting.py's samples are capitalized), floats, in time order."""
    renamed = bars.rename(columns={c: c.lower() for c in bars.columns})
    missing = [c for c in COLUMNS[:4] if c not in renamed.columns]
    if missing:
        raise ValueError(f"bars lack columns {missing}")
    if not renamed.index.is_monotonic_increasing:
        raise ValueError("bars must be in time order")
    out = renamed[[c for c in COLUMNS if c in renamed.columns]].astype(float)
    if "volume" not in out.columns:
        out["volume"] = 0.0
    return out


class Line:
    """One column as a strategy sees it during ``next``: ``line[-1]`` is the current bar, ``line[-2]`` the one
    before; a later bar is out of range. During ``init`` the clock stands on the last bar, so that indicators
    are computed once over the whole series (they must be causal, such as rolling windows)."""

    __slots__ = ("_bt", "array")

    def __init__(self, array: FloatArray, bt: Backtest) -> None:
        self.array = array
        self._bt = bt

    def __getitem__(self, k: int) -> float:
        now = self._bt.now
        j = now + 1 + k if k < 0 else k
        if j < 0 or j > now:
            raise IndexError(f"bar {k} is not visible at bar {now}")
        return float(self.array[j])

    def __len__(self) -> int:
        return self._bt.now + 1

    @property
    def values(self) -> FloatArray:
        return self.array[: self._bt.now + 1]


class Bars:
    __slots__ = ("close", "high", "index", "low", "open", "volume")

    def __init__(self, frame: pd.DataFrame, bt: Backtest) -> None:
        self.index = frame.index
        self.open = Line(frame["open"].to_numpy(), bt)
        self.high = Line(frame["high"].to_numpy(), bt)
        self.low = Line(frame["low"].to_numpy(), bt)
        self.close = Line(frame["close"].to_numpy(), bt)
        self.volume = Line(frame["volume"].to_numpy(), bt)


class Strategy:
    """Subclass and define ``init`` (indicators, with ``self.I``) and ``next`` (decisions, bar by bar)."""

    def __init__(self, bt: Backtest, params: dict[str, Any]) -> None:
        self._bt = bt
        self.data = Bars(bt.bars, bt)
        for name, value in params.items():
            if not hasattr(type(self), name):
                raise AttributeError(f"{type(self).__name__} has no parameter {name!r}")
            setattr(self, name, value)

    def init(self) -> None:
        pass

    def next(self) -> None:
        pass

    def I(self, func: Callable[..., Any], *args: Any) -> Line:  # noqa: E743 - backtesting.py's name, kept on purpose
        """An indicator: ``func(*args)`` over the whole series (Line arguments are passed as arrays), read bar by
        bar like the price columns."""
        plain = [a.values if isinstance(a, Line) else a for a in args]
        values = np.asarray(func(*plain), dtype=float)
        if values.shape != (len(self._bt.bars),):
            raise ValueError(f"indicator has shape {values.shape}, expected ({len(self._bt.bars)},)")
        return Line(values, self._bt)

    @property
    def position(self) -> int:
        """Lots held now (before the pending orders fill)."""
        return self._bt.position

    @property
    def equity(self) -> float:
        return self._bt.cash + self._bt.position * self._bt.lot_size * float(self._bt.close[self._bt.now])

    def buy(self, size: int | None = None, limit: float | None = None, *, fraction: float | None = None) -> None:
        """Buy ``size`` (> 0) lots more at the next open; with ``limit``, a limit order for the next bar only. Or
        buy ``fraction`` (0 < f < 1) of the equity's worth, sized at the fill price (``Backtest.fill_fraction``)."""
        self._order(size, 1, limit, fraction)

    def sell(self, size: int | None = None, limit: float | None = None, *, fraction: float | None = None) -> None:
        """Sell ``size`` (> 0) lots more, as ``buy`` buys."""
        self._order(size, -1, limit, fraction)

    def close(self) -> None:
        """Go flat at the next open (cancels the orders sent before on this bar, limit and fraction orders too)."""
        self._bt.target = 0
        self._bt.limits.clear()
        self._bt.fractions.clear()

    def _order(self, size: int | None, sign: int, limit: float | None, fraction: float | None) -> None:
        if fraction is not None:
            if size is not None or limit is not None:
                raise ValueError("a fraction order has no size and no limit")
            if not 0 < fraction < 1:
                raise ValueError(f"fraction must be in (0, 1), not {fraction!r}")
            self._bt.fractions.append((sign, float(fraction)))
            return
        if not isinstance(size, int | np.integer) or isinstance(size, bool) or size <= 0:
            raise ValueError(f"order size must be a whole number of lots > 0, not {size!r}")
        if limit is None:
            self._bt.target += sign * int(size)
        elif not limit > 0:
            raise ValueError(f"limit price must be > 0, not {limit!r}")
        else:
            self._bt.limits.append((sign * int(size), float(limit)))


class Backtest:
    """Run ``strategy`` over ``bars``. ``max_position`` caps the absolute position in lots: an order that would
    pass it is cut to the limit (counted in metrics["orders_clipped"])."""

    def __init__(
        self,
        bars: pd.DataFrame,
        strategy: type[Strategy],
        *,
        cash: float = 10_000.0,
        fees: Fees | None = None,
        slippage: Slippage | None = None,
        max_position: int | None = None,
        lot_size: float = 1.0,
        tick: float | None = None,
        periods_per_year: float | None = None,
    ) -> None:
        self.bars = normalize_bars(bars)
        if len(self.bars) < 2:
            raise ValueError("need at least two bars")
        self.strategy_class = strategy
        self.initial_cash = float(cash)
        self.fees = fees if fees is not None else Fees.from_venue()
        self.slippage = slippage if slippage is not None else Slippage()
        self.max_position = max_position
        self.lot_size = float(lot_size)
        self.tick = tick
        self.periods_per_year = periods_per_year
        self.open = self.bars["open"].to_numpy()
        self.high = self.bars["high"].to_numpy()
        self.low = self.bars["low"].to_numpy()
        self.close = self.bars["close"].to_numpy()
        # run state, reset by run()
        self.now = len(self.bars) - 1
        self.cash = self.initial_cash
        self.position = 0
        self.target = 0
        self.limits: list[tuple[int, float]] = []  # (signed lots, limit price) sent on the bar just closed
        self.fractions: list[tuple[int, float]] = []  # (side, fraction of equity) sent on the bar just closed
        self.clipped = 0

    def fill_price(self, side: int, bar: int) -> float:
        """The price a market order decided on bar ``bar - 1`` fills at on bar ``bar``."""
        return fill_price(self.open, self.high, self.low, bar, side, self.slippage, self.tick)

    def fill_limit(self, bar: int, qty: int, price: float, fills: list[tuple[int, int, float, float, bool]]) -> None:
        """A limit order on ``bar``: marketable at the open, it takes like a market order (slippage included, but
        never past its limit); otherwise it rests, and fills at its limit as a maker if the bar reaches it."""
        side = 1 if qty > 0 else -1
        open_ = float(self.open[bar])
        if (open_ <= price) if side > 0 else (open_ >= price):
            fill = self.fill_price(side, bar)
            fill, rate, maker = (min(fill, price) if side > 0 else max(fill, price)), self.fees.taker_rate, False
        elif (float(self.low[bar]) <= price) if side > 0 else (float(self.high[bar]) >= price):
            fill, rate, maker = price, self.fees.maker_rate, True
        else:
            return
        delta = self.limit(self.position + qty) - self.position
        if delta:
            fee = abs(delta) * self.lot_size * fill * rate
            self.cash = self.cash + (-(delta * self.lot_size * fill) - fee)
            self.position += delta
            fills.append((bar, delta, fill, fee, maker))

    def fill_fraction(
        self, bar: int, side: int, fraction: float, fills: list[tuple[int, int, float, float, bool]]
    ) -> None:
        """A market order for ``fraction`` of the equity at this open (after the bar's other market fill): the
        whole lots that ``fraction * equity`` pays for, fee included, at the fill price. This is backtesting.py's
        relative size, computed with its arithmetic so that the two agree when the position is flat (its margin
        rules differ when it is not); the size comes from the fill price, which the strategy could not know."""
        price = self.fill_price(side, bar)
        rate, lot = self.fees.taker_rate, self.lot_size
        equity = self.cash + self.position * lot * price
        price_with_fee = price + fraction * price * rate / fraction
        lots = int((max(equity, 0.0) * 1.0 * fraction) // (price_with_fee * lot))
        delta = self.limit(self.position + side * lots) - self.position if lots > 0 else 0
        if delta:
            fee = abs(delta) * lot * price * rate
            self.cash = self.cash + (-(delta * lot * price) - fee)
            self.position += delta
            fills.append((bar, delta, price, fee, False))

    def limit(self, target: int) -> int:
        cap = self.max_position
        if cap is not None and abs(target) > cap:
            self.clipped += 1
            return cap if target > 0 else -cap
        return target

    def run(self, **params: Any) -> Result:
        n = len(self.bars)
        self.cash, self.position, self.target, self.clipped = self.initial_cash, 0, 0, 0
        self.limits, self.fractions = [], []
        self.now = n - 1
        strategy = self.strategy_class(self, params)
        strategy.init()
        rate, lot = self.fees.taker_rate, self.lot_size
        cash_after = np.empty(n)
        held = np.empty(n, dtype=np.int64)
        raw_fills: list[tuple[int, int, float, float, bool]] = []
        for i in range(n):
            if self.target != self.position:  # sent on bar i - 1: fills at this bar's open
                self.target = self.limit(self.target)
                delta = self.target - self.position
                if delta:
                    price = self.fill_price(1 if delta > 0 else -1, i)
                    notional = delta * lot * price
                    fee = abs(delta) * lot * price * rate
                    self.cash = self.cash + (-notional - fee)
                    self.position = self.target
                    raw_fills.append((i, delta, price, fee, False))
            if self.fractions:
                for side, fraction in self.fractions:
                    self.fill_fraction(i, side, fraction, raw_fills)
                self.fractions = []
            if self.limits:
                for qty, limit_price in self.limits:
                    self.fill_limit(i, qty, limit_price, raw_fills)
                self.limits = []  # a limit order lives one bar: what did not fill expires
            cash_after[i] = self.cash
            held[i] = self.position
            self.now = i
            self.target = self.position
            strategy.next()
        fills = make_fills(self.bars.index, raw_fills)
        return make_result(self.bars, cash_after, held, fills, lot, self.initial_cash, self.clipped,
                           self.periods_per_year)  # fmt: skip


def fill_price(
    open_: FloatArray, high: FloatArray, low: FloatArray, bar: int, side: int, slip: Slippage, tick: float | None
) -> float:
    price = float(open_[bar])
    if slip.bps or slip.range_fraction:
        decided = bar - 1
        cost = price * slip.bps / 10_000 + slip.range_fraction * float(high[decided] - low[decided])
        price = min(price + cost, float(high[bar])) if side > 0 else max(price - cost, float(low[bar]))
    if tick:
        # against the trader, but never outside the bar's range: a buy rounds up, a sell down
        steps = price / tick
        rounded = math.ceil(steps - 1e-9) if side > 0 else math.floor(steps + 1e-9)
        price = rounded * tick
    return price


def make_fills(index: pd.Index, raw: list[tuple[int, int, float, float, bool]]) -> list[Fill]:
    """(bar, qty, price, fee, maker) to Fills; the times are looked up at once (one index lookup per fill costs
    more than the whole fill on a year of minute bars)."""
    times = list(index[[r[0] for r in raw]])
    return [Fill(bar, t, qty, price, fee, maker) for (bar, qty, price, fee, maker), t in zip(raw, times, strict=True)]


def make_result(
    bars: pd.DataFrame,
    cash_after: FloatArray,
    held: npt.NDArray[np.int64],
    fills: list[Fill],
    lot: float,
    initial_cash: float,
    clipped: int,
    periods_per_year: float | None,
) -> Result:
    close = bars["close"].to_numpy()
    values = cash_after + held * lot * close
    ruined = np.flatnonzero(values <= 0)
    if len(ruined):
        # ruin: at the first close with nothing left the position is closed there and trading stops; going on
        # would make every return after it meaningless (a negative equity's "returns" change sign)
        r = int(ruined[0])
        values[r + 1 :] = values[r]
        held = held.copy()
        held[r + 1 :] = 0
        fills = [f for f in fills if f.bar <= r]
    equity = pd.Series(values, index=bars.index, name="equity")
    position = pd.Series(held, index=bars.index, name="position")
    trades = round_trips(fills, lot)
    metrics = compute_metrics(equity, fills, trades, lot, initial_cash, periods_per_year)
    metrics["orders_clipped"] = float(clipped)
    metrics["ruined_at_bar"] = float(ruined[0]) if len(ruined) else math.nan
    return Result(equity=equity, position=position, fills=fills, trades=trades, metrics=metrics)


def backtest_signal(
    bars: pd.DataFrame,
    signal: pd.Series | npt.ArrayLike,
    fees: Fees | None = None,
    *,
    size: int = 1,
    cash: float = 10_000.0,
    slippage: Slippage | None = None,
    max_position: int | None = None,
    lot_size: float = 1.0,
    tick: float | None = None,
    periods_per_year: float | None = None,
) -> Result:
    """Trade a position signal: ``signal[i]`` in {-1, 0, +1} (NaN counts as 0), known at the close of bar ``i``,
    becomes a position of ``signal[i] * size`` lots at the open of bar ``i + 1``. A Series is aligned on the
    bars' index. Same fills and equity as ``Backtest`` with a strategy that holds the signal (tested)."""
    frame = normalize_bars(bars)
    n = len(frame)
    if isinstance(signal, pd.Series):
        raw = signal.reindex(frame.index).to_numpy(dtype=float)
    else:
        raw = np.asarray(signal, dtype=float)
    if raw.shape != (n,):
        raise ValueError(f"signal has shape {raw.shape}, expected ({n},)")
    raw = np.nan_to_num(raw, nan=0.0)
    if not np.isin(raw, (-1.0, 0.0, 1.0)).all():
        raise ValueError("signal values must be -1, 0 or +1")
    target = raw.astype(np.int64) * size
    clipped = 0
    if max_position is not None:
        capped = np.clip(target, -max_position, max_position)
        # counted as the loop counts: each bar (but the last) whose wanted position passes the limit and differs
        # from the position held then, which is the capped target of the bar before
        before = np.concatenate(([0], capped[:-1]))
        clipped = int(((np.abs(target) > max_position) & (target != before))[:-1].sum())
        target = capped
    held = np.concatenate(([0], target[:-1]))  # the open of bar i fills the target decided at bar i - 1
    delta = np.diff(held, prepend=0)
    open_, high, low = (frame[c].to_numpy() for c in ("open", "high", "low"))
    slip = slippage if slippage is not None else Slippage()
    rate = (fees if fees is not None else Fees.from_venue()).taker_rate
    flows = np.zeros(n)
    raw_fills: list[tuple[int, int, float, float, bool]] = []
    for i in np.flatnonzero(delta).tolist():
        d = int(delta[i])
        price = fill_price(open_, high, low, i, 1 if d > 0 else -1, slip, tick)
        fee = abs(d) * lot_size * price * rate
        flows[i] = -(d * lot_size * price) - fee
        raw_fills.append((i, d, price, fee, False))
    fills = make_fills(frame.index, raw_fills)
    cash_after = np.add.accumulate(np.concatenate(([float(cash)], flows)))[1:]
    return make_result(frame, cash_after, held, fills, lot_size, float(cash), clipped, periods_per_year)
