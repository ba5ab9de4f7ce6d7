"""Binance's market-data JSON shapes (streams and REST) from the feed's integers: decimal strings for prices and
amounts, ms for times, the engine's ids as they are.

Prices and quantities of one symbol repeat endlessly (the same levels, the same lot sizes), so their strings are
cached per symbol: the hot path of a depth message is then dict lookups.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any

from feeds.book import CHECKSUM_LEVELS, Level, LevelBook, checksum
from feeds.candles import Window
from persistence.klines import WIDTH, Kline
from wire.enums import Side
from wire.events import TradeExecuted
from wire.venue import SymbolSpec, Venue

NS_PER_MS = 1_000_000
Json = dict[str, Any]


class SymbolTexts:
    """Decimal strings of one symbol's prices, quantities and quote amounts."""

    def __init__(self, spec: SymbolSpec, quote_decimals: int) -> None:
        self.spec = spec
        self.price = lru_cache(maxsize=1 << 16)(spec.price_text)
        self.qty = lru_cache(maxsize=1 << 16)(spec.qty_text)
        self.quote_exp = Decimal(1).scaleb(-quote_decimals)

    def money(self, units: int) -> str:
        """Quote units as the quote asset's decimals (format "f": never an exponent form such as 0E-8)."""
        return format(Decimal(units) * self.quote_exp, "f")

    def levels(self, levels: list[Level]) -> list[list[str]]:
        price, qty = self.price, self.qty
        return [[price(p), qty(q)] for p, q in levels]

    def checksum(self, book: LevelBook) -> int:
        bids, asks = book.top(CHECKSUM_LEVELS)
        price, qty = self.price, self.qty
        return checksum([(price(p), qty(q)) for p, q in bids], [(price(p), qty(q)) for p, q in asks])

    def average(self, quote_units: int, lots: int) -> str:
        """quote / base as a price with 8 decimals (Binance's weightedAvgPrice, avgPrice)."""
        if not lots:
            return "0.00000000"
        base = self.spec.lots_to_qty(lots)
        return str((Decimal(quote_units) * self.quote_exp / base).quantize(Decimal("1e-8"), ROUND_HALF_EVEN))


def texts_for(venue: Venue) -> dict[str, SymbolTexts]:
    decimals = {a.name: a.decimals for a in venue.assets}
    return {s.symbol: SymbolTexts(s, decimals[s.quote]) for s in venue.symbols}


def ms(ns: int) -> int:
    return ns // NS_PER_MS


# streams ---------------------------------------------------------------------------------------------------------


def depth_update(t: SymbolTexts, event_ms: int, first: int, last: int, levels: dict[tuple[Side, int], int],
                 book: LevelBook) -> Json:  # fmt: skip
    """A diff: the absolute new size of each level changed in update ids [first, last] ("0": gone), sorted best
    first per side; ``cs`` is Mercury's checksum of the book after ``last`` (docs/api.md)."""
    bids = sorted(((p, q) for (side, p), q in levels.items() if side is Side.BUY), reverse=True)
    asks = sorted((p, q) for (side, p), q in levels.items() if side is Side.SELL)
    return {"e": "depthUpdate", "E": event_ms, "s": t.spec.symbol, "U": first, "u": last,
            "b": t.levels(bids), "a": t.levels(asks), "cs": t.checksum(book)}  # fmt: skip


def partial_depth(t: SymbolTexts, book: LevelBook, depth: int) -> Json:
    bids, asks = book.top(depth)
    return {"lastUpdateId": book.update_id, "bids": t.levels(bids), "asks": t.levels(asks)}


def trade(t: SymbolTexts, ev: TradeExecuted, event_ms: int) -> Json:
    return {"e": "trade", "E": event_ms, "s": ev.symbol, "t": ev.trade_id, "p": t.price(ev.price),
            "q": t.qty(ev.qty), "T": ms(ev.ts), "m": ev.taker_side is Side.SELL, "M": True}  # fmt: skip


def aggregate(trades: list[TradeExecuted]) -> list[list[TradeExecuted]]:
    """Binance's aggregate trades: consecutive fills of one taker order at one price. The aggregate's id is its first
    trade's id, so it is the same whoever computes it, from the stream or from history."""
    groups: list[list[TradeExecuted]] = []
    for ev in trades:
        if groups:
            last = groups[-1][-1]
            if (last.taker_order_id == ev.taker_order_id and last.price == ev.price and last.in_seq == ev.in_seq
                    and last.trade_id + 1 == ev.trade_id):  # fmt: skip
                groups[-1].append(ev)
                continue
        groups.append([ev])
    return groups


def agg_trade(t: SymbolTexts, group: list[TradeExecuted], event_ms: int | None = None) -> Json:
    first, last = group[0], group[-1]
    out: Json = {} if event_ms is None else {"e": "aggTrade", "E": event_ms, "s": first.symbol}
    out.update(a=first.trade_id, p=t.price(first.price), q=t.qty(sum(ev.qty for ev in group)), f=first.trade_id,
               l=last.trade_id, T=ms(first.ts), m=first.taker_side is Side.SELL, M=True)  # fmt: skip
    return out


def kline_body(t: SymbolTexts, k: Kline, closed: bool) -> Json:
    return {"t": ms(k.open_time), "T": ms(k.open_time + WIDTH[k.interval]) - 1, "s": k.symbol, "i": k.interval,
            "f": k.first_trade_id if k.trades else -1, "L": k.last_trade_id if k.trades else -1,
            "o": t.price(k.open), "c": t.price(k.close), "h": t.price(k.high), "l": t.price(k.low),
            "v": t.qty(k.volume), "n": k.trades, "x": closed, "q": t.money(k.quote_volume),
            "V": t.qty(k.taker_buy_volume), "Q": t.money(k.taker_buy_quote_volume), "B": "0"}  # fmt: skip


def kline(t: SymbolTexts, k: Kline, closed: bool, event_ms: int) -> Json:
    return {"e": "kline", "E": event_ms, "s": k.symbol, "k": kline_body(t, k, closed)}


def kline_row(t: SymbolTexts, k: Kline) -> list[Any]:
    """One row of GET /api/v3/klines."""
    return [ms(k.open_time), t.price(k.open), t.price(k.high), t.price(k.low), t.price(k.close), t.qty(k.volume),
            ms(k.open_time + WIDTH[k.interval]) - 1, t.money(k.quote_volume), k.trades, t.qty(k.taker_buy_volume),
            t.money(k.taker_buy_quote_volume), "0"]  # fmt: skip


def _change(t: SymbolTexts, w: Window) -> tuple[str, str]:
    k = w.kline
    change = t.spec.ticks_to_price(k.close - k.open)
    opened = t.spec.ticks_to_price(k.open)
    percent = (change * 100 / opened).quantize(Decimal("0.001"), ROUND_HALF_EVEN) if opened else Decimal("0.000")
    return t.spec.price_text(k.close - k.open), str(percent + 0)  # + 0: a negative zero ("-0.000") becomes "0.000"


def ticker(t: SymbolTexts, w: Window, book: LevelBook, last_qty: int, close_ms: int, event_ms: int) -> Json:
    k = w.kline
    bid, ask = book.best()
    change, percent = _change(t, w)
    return {"e": "24hrTicker", "E": event_ms, "s": t.spec.symbol, "p": change, "P": percent,
            "w": t.average(k.quote_volume, k.volume), "x": t.price(w.prev_close), "c": t.price(k.close),
            "Q": t.qty(last_qty), "b": t.price(bid[0] if bid else 0), "B": t.qty(bid[1] if bid else 0),
            "a": t.price(ask[0] if ask else 0), "A": t.qty(ask[1] if ask else 0), "o": t.price(k.open),
            "h": t.price(k.high), "l": t.price(k.low), "v": t.qty(k.volume), "q": t.money(k.quote_volume),
            "O": ms(k.open_time), "C": close_ms, "F": k.first_trade_id, "L": k.last_trade_id,
            "n": k.trades}  # fmt: skip


def window_ticker(t: SymbolTexts, w: Window, size: str, close_ms: int, event_ms: int) -> Json:
    """``<symbol>@ticker_<size>``: a rolling window's statistics (Binance's ``1hTicker``, ``4hTicker``, ...)."""
    k = w.kline
    change, percent = _change(t, w)
    return {"e": size + "Ticker", "E": event_ms, "s": t.spec.symbol, "p": change, "P": percent, "o": t.price(k.open),
            "h": t.price(k.high), "l": t.price(k.low), "c": t.price(k.close),
            "w": t.average(k.quote_volume, k.volume), "v": t.qty(k.volume), "q": t.money(k.quote_volume),
            "O": ms(k.open_time), "C": close_ms, "F": k.first_trade_id, "L": k.last_trade_id,
            "n": k.trades}  # fmt: skip


def mini_ticker(t: SymbolTexts, w: Window, event_ms: int) -> Json:
    k = w.kline
    return {"e": "24hrMiniTicker", "E": event_ms, "s": t.spec.symbol, "c": t.price(k.close), "o": t.price(k.open),
            "h": t.price(k.high), "l": t.price(k.low), "v": t.qty(k.volume), "q": t.money(k.quote_volume)}  # fmt: skip


def book_ticker(t: SymbolTexts, book: LevelBook) -> Json:
    bid, ask = book.best()
    return {"u": book.update_id, "s": t.spec.symbol, "b": t.price(bid[0] if bid else 0),
            "B": t.qty(bid[1] if bid else 0), "a": t.price(ask[0] if ask else 0),
            "A": t.qty(ask[1] if ask else 0)}  # fmt: skip


# REST --------------------------------------------------------------------------------------------------------------


def rest_trade(t: SymbolTexts, ev: TradeExecuted) -> Json:
    return {"id": ev.trade_id, "price": t.price(ev.price), "qty": t.qty(ev.qty),
            "quoteQty": t.money(ev.price * ev.qty * t.spec.quote_per_tick_lot), "time": ms(ev.ts),
            "isBuyerMaker": ev.taker_side is Side.SELL, "isBestMatch": True}  # fmt: skip


def rest_ticker(t: SymbolTexts, w: Window, close_ms: int, mini: bool, book: LevelBook | None = None,
                last_qty: int = 0) -> Json:  # fmt: skip
    """GET /api/v3/ticker/24hr (with the ``book``: its prevClosePrice, lastQty and best prices) or /api/v3/ticker
    (a rolling window: without them), FULL or MINI."""
    k = w.kline
    out: Json = {"symbol": t.spec.symbol}
    if not mini:
        change, percent = _change(t, w)
        out.update(priceChange=change, priceChangePercent=percent, weightedAvgPrice=t.average(k.quote_volume, k.volume))
        if book is not None:
            bid, ask = book.best()
            out.update(prevClosePrice=t.price(w.prev_close), lastPrice=t.price(k.close), lastQty=t.qty(last_qty),
                       bidPrice=t.price(bid[0] if bid else 0), bidQty=t.qty(bid[1] if bid else 0),
                       askPrice=t.price(ask[0] if ask else 0), askQty=t.qty(ask[1] if ask else 0))  # fmt: skip
    out.update(openPrice=t.price(k.open), highPrice=t.price(k.high), lowPrice=t.price(k.low),
               lastPrice=t.price(k.close), volume=t.qty(k.volume), quoteVolume=t.money(k.quote_volume),
               openTime=ms(k.open_time), closeTime=close_ms, firstId=k.first_trade_id, lastId=k.last_trade_id,
               count=k.trades)  # fmt: skip
    return out


def rest_book_ticker(t: SymbolTexts, book: LevelBook) -> Json:
    bid, ask = book.best()
    return {"symbol": t.spec.symbol, "bidPrice": t.price(bid[0] if bid else 0), "bidQty": t.qty(bid[1] if bid else 0),
            "askPrice": t.price(ask[0] if ask else 0), "askQty": t.qty(ask[1] if ask else 0)}  # fmt: skip
