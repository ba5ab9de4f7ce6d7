"""The public market-data REST endpoints, answered from the feed's state (and the MongoDB store for older candles
and trades), in Binance's shapes and with its errors. ``ping``, ``time`` and ``exchangeInfo`` are served too, so that
a market-data client can use a feed as its whole public API (ccxt's ``urls.api.public``). Each request spends
Binance's request weight for it (feeds/weights.py) from the per-IP budget the gateways share.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feeds import payloads as pl
from feeds import weights
from feeds.candles import MINUTE, window_minutes
from feeds.history import MarketHistory
from feeds.market import Market, SymbolMarket
from gateways.binance import errors
from gateways.binance.errors import ApiError
from gateways.binance.limits import RateLimiter
from gateways.binance.params import Params
from gateways.binance.views import Formats
from gateways.clock import now_ms
from persistence.klines import WIDTH, Kline
from wire.events import TradeExecuted

DEPTH_LIMITS = (1, 5000)
NS_PER_MS = 1_000_000
HOUR_NS = 3_600 * 1_000_000_000
AVG_MINUTES = 5
INVALID_INTERVAL = errors.bad(-1120, "Invalid interval.")
NOT_READY = ApiError(503, -1003, "The market-data feed is still loading its state; retry shortly.", retry_after=1)


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


Handler = Callable[[Request], Awaitable[Response]]
Endpoint = Callable[[Request, Params], Awaitable[Response]]


class MarketRest:
    def __init__(self, market: Market, history: MarketHistory | None, ready: Callable[[], bool],
                 limiter: RateLimiter) -> None:  # fmt: skip
        self.market = market
        self.history = history
        self.ready = ready
        self.limiter = limiter
        self.texts = pl.texts_for(market.venue)
        self.formats = Formats(market.venue, limiter.limits)  # exchangeInfo lists the limits the venue enforces

    def routes(self) -> list[Route]:
        n = len(self.market.symbols)
        table: list[tuple[str, Endpoint, weights.Weigher]] = [
            ("/api/v3/ping", self.ping, weights.fixed(1)), ("/api/v3/time", self.time, weights.fixed(1)),
            ("/api/v3/exchangeInfo", self.exchange_info, weights.fixed(20)),
            ("/api/v3/depth", self.depth, weights.depth), ("/api/v3/trades", self.trades, weights.fixed(25)),
            ("/api/v3/historicalTrades", self.historical_trades, weights.fixed(25)),
            ("/api/v3/aggTrades", self.agg_trades, weights.fixed(4)),
            ("/api/v3/klines", self.klines, weights.fixed(2)), ("/api/v3/uiKlines", self.klines, weights.fixed(2)),
            ("/api/v3/ticker/24hr", self.ticker_24hr, weights.ticker_24hr(n)),
            ("/api/v3/ticker", self.ticker_rolling, weights.ticker_rolling(n)),
            ("/api/v3/ticker/price", self.ticker_price, weights.one_or_all),
            ("/api/v3/ticker/bookTicker", self.book_ticker, weights.one_or_all),
            ("/api/v3/avgPrice", self.avg_price, weights.fixed(2)),
        ]  # fmt: skip
        return [Route(path, _guarded(handler, weigh, self.ready, self.limiter), methods=["GET"])
                for path, handler, weigh in table]  # fmt: skip

    # helpers ----------------------------------------------------------------------------------------------------

    def _symbol(self, params: Params) -> SymbolMarket:
        m = self.market.symbols.get(params.required("symbol"))
        if m is None:
            raise errors.INVALID_SYMBOL
        return m

    def _symbols(self, params: Params) -> list[SymbolMarket]:
        """``symbol``, ``symbols`` (a JSON array) or neither (all), as Binance's ticker endpoints take them."""
        names = params.symbols()
        if names is None:
            return list(self.market.symbols.values())
        out = []
        for name in names:
            m = self.market.symbols.get(name)
            if m is None:
                raise errors.INVALID_SYMBOL
            out.append(m)
        return out

    @staticmethod
    def _one_or_many(params: Params, items: list[Any]) -> Any:
        return items[0] if params.get("symbol") is not None else items

    # endpoints --------------------------------------------------------------------------------------------------

    async def ping(self, request: Request, params: Params) -> Response:
        return JsonResponse({})

    async def time(self, request: Request, params: Params) -> Response:
        return JsonResponse({"serverTime": time.time_ns() // NS_PER_MS})

    async def exchange_info(self, request: Request, params: Params) -> Response:
        return JsonResponse(self.formats.exchange_info(time.time_ns() // NS_PER_MS, params.symbols()))

    async def depth(self, request: Request, params: Params) -> Response:
        m = self._symbol(params)
        limit = params.integer("limit", low=1, high=5000) or 100
        t = self.texts[m.spec.symbol]
        body = pl.partial_depth(t, m.book, limit)
        body["cs"] = t.checksum(m.book)
        return JsonResponse(body)

    async def trades(self, request: Request, params: Params) -> Response:
        m = self._symbol(params)
        limit = params.integer("limit", low=1, high=1000) or 500
        t = self.texts[m.spec.symbol]
        recent = list(m.trades)[-limit:]
        return JsonResponse([pl.rest_trade(t, ev) for ev in recent])

    async def historical_trades(self, request: Request, params: Params) -> Response:
        m = self._symbol(params)
        limit = params.integer("limit", low=1, high=1000) or 500
        from_id = params.integer("fromId")
        if from_id is None:
            return await self.trades(request, params)
        found = await self._trades_from(m, from_id, None, None, limit)
        return JsonResponse([pl.rest_trade(self.texts[m.spec.symbol], ev) for ev in found])

    async def _trades_from(self, m: SymbolMarket, from_id: int | None, start: int | None, end: int | None,
                           limit: int) -> list[TradeExecuted]:  # fmt: skip
        held = list(m.trades)
        oldest = held[0].trade_id if held else m.trade_id + 1
        in_memory = (from_id is not None and from_id >= oldest) or (from_id is None and start is not None
                                                                     and held and start >= held[0].ts)  # fmt: skip
        if in_memory or self.history is None:
            out = [ev for ev in held if (from_id is None or ev.trade_id >= from_id)
                   and (start is None or ev.ts >= start) and (end is None or ev.ts <= end)]  # fmt: skip
            return out[:limit]
        return await self.history.trades(m.spec.symbol, from_id, start, end, limit, m.trade_id)

    async def agg_trades(self, request: Request, params: Params) -> Response:
        m = self._symbol(params)
        limit = params.integer("limit", low=1, high=1000) or 500
        from_id = params.integer("fromId")
        start_ns, end_ns = params.time_ns("startTime"), params.time_ns("endTime", end=True)
        if from_id is not None and (start_ns is not None or end_ns is not None):
            raise errors.bad(-1128, "Combination of optional parameters invalid.")
        if start_ns is not None and end_ns is not None and not 0 <= end_ns - start_ns < HOUR_NS + NS_PER_MS:
            raise errors.bad(-1127, "More than 1 hours between startTime and endTime.")
        t = self.texts[m.spec.symbol]
        if from_id is None and start_ns is None and end_ns is None:
            held = list(m.trades)
            groups = pl.aggregate(held)
            if len(held) == m.trades.maxlen and len(groups) > 1:
                groups = groups[1:]  # the oldest group may have lost trades off the end of memory
            return JsonResponse([pl.agg_trade(t, g) for g in groups[-limit:]])
        found = await self._trades_from(m, from_id, start_ns, end_ns, limit * 4)
        return JsonResponse([pl.agg_trade(t, g) for g in pl.aggregate(found)[:limit]])

    async def klines(self, request: Request, params: Params) -> Response:
        m = self._symbol(params)
        interval = params.required("interval")
        width = WIDTH.get(interval)
        if width is None:
            raise INVALID_INTERVAL
        limit = params.integer("limit", low=1, high=1000) or 500
        start, end = params.time_ns("startTime"), params.time_ns("endTime", end=True)
        candles = await self._candles(m, interval, width, limit, start, end)
        t = self.texts[m.spec.symbol]
        return JsonResponse([pl.kline_row(t, k) for k in candles])

    async def _candles(self, m: SymbolMarket, interval: str, width: int, limit: int, start_ns: int | None,
                       end_ns: int | None) -> list[Kline]:  # fmt: skip
        """Contiguous candles as Binance gives them: those opened in [startTime, endTime], the first ``limit`` of
        them with a startTime, else the last; silent intervals are flat at the last close, none before the first
        trade: a startTime before it starts at the first candle (a client paging from an early time gets them)."""
        held = {k.open_time: k for k in m.candles.history(interval)}
        current = max(held) if held else _now_ns() - _now_ns() % width
        last = current if end_ns is None else min(current, end_ns - end_ns % width)
        first = last - (limit - 1) * width if start_ns is None else -(-start_ns // width) * width
        opening = held.get(first)
        close = 0  # the last close before ``first``, wanted only when its own candle has no trades
        if opening is None or not opening.trades:
            close = await self._close_before(m, interval, first, held)
            if not close and start_ns is not None:
                first = await self._first_open(m, interval, width, first, last, held)
        if start_ns is not None:
            last = min(last, first + (limit - 1) * width)
        if first > last:
            return []
        wanted = range(first, last + 1, width)
        missing = [t for t in wanted if t not in held]
        if missing and self.history is not None:
            for stored in await self.history.stored(m.spec.symbol, interval, missing[0], missing[-1]):
                held.setdefault(stored.open_time, stored)
        out: list[Kline] = []
        for t in wanted:
            k = held.get(t)
            if k is not None and k.trades:
                close = k.close
            elif close:
                k = Kline(m.spec.symbol, interval, t, close, close, close, close)
            else:
                continue  # before the first trade
            out.append(k)
        return out

    async def _close_before(self, m: SymbolMarket, interval: str, t: int, held: dict[int, Kline]) -> int:
        """The close of the last candle with trades opened before ``t`` (0: no trade before it): memory first, which
        may hold candles the persister has not stored yet, then the store."""
        before = [k for k in held.values() if k.open_time < t and k.trades]
        if before:
            return max(before, key=lambda k: k.open_time).close
        if self.history is None:
            return 0
        return await self.history.close_before(m.spec.symbol, interval, t)

    async def _first_open(self, m: SymbolMarket, interval: str, width: int, t: int, last: int,
                          held: dict[int, Kline]) -> int:  # fmt: skip
        """The open time of the first candle with trades opened in [t, last], memory or store (past ``last``:
        none)."""
        found = [k.open_time for k in held.values() if t <= k.open_time <= last and k.trades]
        if self.history is not None:
            stored = await self.history.first_open(m.spec.symbol, interval, t, min(found, default=last) + width - 1)
            if stored is not None:
                found.append(stored - stored % width)
        return min(found, default=last + width)

    async def ticker_24hr(self, request: Request, params: Params) -> Response:
        mini = self._ticker_type(params)
        now = _now_ns() // NS_PER_MS
        items = []
        for m in self._symbols(params):
            last_qty = m.trades[-1].qty if m.trades else 0
            items.append(pl.rest_ticker(self.texts[m.spec.symbol], m.candles.window(), now, mini, m.book, last_qty))
        return JsonResponse(self._one_or_many(params, items))

    async def ticker_rolling(self, request: Request, params: Params) -> Response:
        """GET /api/v3/ticker: a rolling window of ``windowSize`` (1m-59m, 1h-23h, 1d-7d; 1d by default) at minute
        granularity; past the day memory holds, the older minutes come from the store."""
        minutes = window_minutes(params.get("windowSize") or "1d")
        if minutes is None:
            raise errors.illegal("windowSize", "1m to 59m, 1h to 23h or 1d to 7d")
        mini = self._ticker_type(params)
        if params.get("symbol") is None and params.get("symbols") is None:
            raise errors.mandatory("symbol")
        now = _now_ns() // NS_PER_MS
        items = []
        for m in self._symbols(params):
            w = m.candles.window(minutes, await self._older_minutes(m, minutes))
            items.append(pl.rest_ticker(self.texts[m.spec.symbol], w, now, mini))
        return JsonResponse(self._one_or_many(params, items))

    @staticmethod
    def _ticker_type(params: Params) -> bool:
        """Whether ``type`` asks for the MINI ticker (FULL by default)."""
        kind = params.get("type") or "FULL"
        if kind not in ("FULL", "MINI"):
            raise errors.illegal("type", "expected FULL or MINI")
        return kind == "MINI"

    async def _older_minutes(self, m: SymbolMarket, minutes: int) -> list[Kline]:
        """The stored 1m candles of a window of ``minutes`` that begin before the oldest one memory holds."""
        current = m.candles.open.get("1m")
        if self.history is None or current is None:
            return []
        held = m.candles.closed["1m"]
        first_held = held[0].open_time if held else current.open_time
        start = current.open_time - (minutes - 1) * MINUTE
        if start >= first_held:
            return []
        return await self.history.stored(m.spec.symbol, "1m", start, first_held - 1)

    async def ticker_price(self, request: Request, params: Params) -> Response:
        items = [{"symbol": m.spec.symbol, "price": self.texts[m.spec.symbol].price(m.last_price)}
                 for m in self._symbols(params)]  # fmt: skip
        return JsonResponse(self._one_or_many(params, items))

    async def book_ticker(self, request: Request, params: Params) -> Response:
        items = [pl.rest_book_ticker(self.texts[m.spec.symbol], m.book) for m in self._symbols(params)]
        return JsonResponse(self._one_or_many(params, items))

    async def avg_price(self, request: Request, params: Params) -> Response:
        m = self._symbol(params)
        minutes = m.candles.history("1m")[-AVG_MINUTES:]
        quote = sum(k.quote_volume for k in minutes)
        lots = sum(k.volume for k in minutes)
        t = self.texts[m.spec.symbol]
        price = t.average(quote, lots) if lots else t.average(m.last_price * t.spec.quote_per_tick_lot, 1)
        close_ms = pl.ms(m.trades[-1].ts) if m.trades else 0
        return JsonResponse({"mins": AVG_MINUTES, "price": price, "closeTime": close_ms})


def _now_ns() -> int:
    return time.time_ns()


def _guarded(handler: Endpoint, weigh: weights.Weigher, ready: Callable[[], bool], limiter: RateLimiter) -> Handler:
    """The request's weight counted (429 -1003 past the minute's budget, as on the gateways), then the endpoint;
    every answer carries X-MBX-USED-WEIGHT-1M, a refusal Binance's JSON error."""

    async def endpoint(request: Request) -> Response:
        headers: dict[str, str] = {}
        try:
            params = Params(request.url.query, "")
            limiter.request(request.client.host if request.client else "", weigh(params), now_ms(), headers)
            if not ready():
                raise NOT_READY
            response = await handler(request, params)
        except ApiError as exc:
            status, body = exc.answer(headers)
            return JsonResponse(body, status_code=status, headers=headers)
        response.headers.update(headers)
        return response

    return endpoint


def create_app(market: Market, history: MarketHistory | None, ready: Callable[[], bool],
               limiter: RateLimiter) -> Starlette:  # fmt: skip
    rest = MarketRest(market, history, ready, limiter)

    async def not_found(request: Request, exc: Exception) -> Response:
        return JsonResponse(errors.NOT_FOUND.body(), status_code=404)

    # public market data, readable by pages of any origin (the trading UI is served by the HTTP gateway), as Binance's
    cors = Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET"])
    return Starlette(routes=rest.routes(), middleware=[cors], exception_handlers={404: not_found, 405: not_found})
