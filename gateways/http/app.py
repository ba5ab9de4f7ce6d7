"""The HTTP gateway: Binance Spot's REST API (/api/v3) for the subset in ../shared/binance-subset.md, on starlette.

Every command goes to the sequencer (client.sequencer.AsyncSequencerClient); an answer in ACK mode is sent once the
command is journaled, RESULT and FULL wait (bounded) for the engine's events of that command (gateways.live).
Open orders and balances come from the live state; closed orders and trades from PostgreSQL (persistence.history),
after the persister has reached what this gateway has seen (read-your-writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast

import asyncpg
import msgspec
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from client.sequencer import AsyncSequencerClient
from gateways.binance import errors
from gateways.binance.auth import Caller, Keys, authenticate
from gateways.binance.errors import ApiError
from gateways.binance.limits import MY_PREVENTED_MATCHES, MY_TRADES, OPEN_ORDERS, Limits, RateLimiter, Weight, spent
from gateways.binance.params import Params
from gateways.binance.views import Formats
from gateways.clock import now_ms
from gateways.http import listenkey, metrics, openapi, wsapi
from gateways.live import LiveState
from persistence.apikeys import SecretCipher
from persistence.history import History, HistoryError
from persistence.migrate import migrate
from persistence.pg_model import OrderRow
from wire.commands import CancelAll, CancelOrder, Command, PlaceOrder, ReplaceOrder
from wire.config import Settings
from wire.enums import AckStatus, OrderType, SelfTradeMode, Side, TimeInForce
from wire.errors import CommandRefused, SequencerUnavailable
from wire.events import (
    CancelRejected,
    Event,
    MatchPrevented,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderReplaced,
    TradeExecuted,
)
from wire.process import cancel_until_done
from wire.tracing import Tracer
from wire.venue import SymbolSpec, Venue

log = logging.getLogger("mercury.gateway.http")

RESULT_TIMEOUT = 5.0  # s a RESULT / FULL answer waits for the engine
HISTORY_TIMEOUT = 2.0  # s a history query waits for the persister to reach what this gateway has seen
MAX_BODY = 64 * 1024
# s requests still waiting for the engine get, once a stop signal arrives, before they are answered -1007 (the
# outcome unknown): the engine may be stopping too, and the server's grace (__main__.GRACE) must not run out first
STOP_RESULT_WAIT = 0.4
STOP_STEP = 0.5  # s each step of a stop may wait for Redis or PostgreSQL (four steps: see __main__.GRACE)
# connections to Redis at most (the event follower and the limits' sync hold one each), and the s a request waits for
# one before it is answered 503 -1001
REDIS_CONNECTIONS = 64
REDIS_WAIT = 2.0


def params_of(query: str, body: bytes) -> Params:
    """A request's parameters from its query string and its form body (ASCII, at most MAX_BODY bytes)."""
    if len(body) > MAX_BODY:
        raise errors.bad(-1101, "Too many parameters; the body is too large.")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise errors.bad(-1100, "Illegal characters found in the body.") from None
    return Params(query, text)


class Gateway:
    def __init__(self, settings: Settings, venue: Venue, cipher: SecretCipher) -> None:
        self.settings = settings
        self.venue = venue
        self.cipher = cipher
        self.formats = Formats(venue, Limits.of(settings))
        self.specs = {s.symbol: s for s in venue.symbols}
        self.decimals = {a.name: a.decimals for a in venue.assets}
        self.pool: asyncpg.Pool | None = None
        self.redis: aioredis.Redis | None = None
        self.sequencer: AsyncSequencerClient | None = None
        self.live: LiveState | None = None
        self.keys: Keys | None = None
        self.history: History | None = None
        self._follower: asyncio.Task[None] | None = None
        self._limits_sync: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.limiter = RateLimiter(Limits.of(settings))

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette | None = None) -> AsyncIterator[None]:
        """Everything the operations need, for the life of the process (the HTTP app's lifespan; the FIX gateway
        runs the same operations inside it)."""
        self._loop = asyncio.get_running_loop()
        self.pool = await self._connect()
        self.redis = redis_client(self.settings.redis_url)
        self.sequencer = AsyncSequencerClient(self.settings, name="gw-http")
        tracer = self.sequencer.tracer = Tracer(self.settings, f"gateway-{self.sequencer.src}", "gateway",
                                                self.venue.shard)  # fmt: skip
        self.keys = Keys(self.pool, self.cipher)
        self.history = History(self.pool, self.venue)
        self.live = LiveState(self.redis, self.pool, self.venue, name=f"gateway:{self.sequencer.src}")
        self._follower = asyncio.create_task(self.live.run())
        # the rate limits' counts, shared with every other gateway process through Redis
        self._limits_sync = asyncio.create_task(self.limiter.run(self.redis, now_ms))
        await self.live.ready.wait()
        # not yet "gateway ready": uvicorn binds its socket only after the lifespan's startup (gateways.http.Server)
        log.info("gateway state loaded")
        try:
            yield
        finally:
            # both await Redis, whose client can lose a cancellation: cancelled again until they end (bounded: a
            # task that ignores them all must not hold the stop past the supervisor's grace)
            if await cancel_until_done((self._follower, self._limits_sync), STOP_STEP):
                log.warning("a background task did not stop within %s s", STOP_STEP)
            # each step bounded: when the whole venue stops, Redis and PostgreSQL may already be gone, and a stop
            # that waits on them outlasts the supervisor's grace and ends in a SIGKILL
            with contextlib.suppress(Exception):  # a clean stop lets the stream be trimmed past this gateway now
                await asyncio.wait_for(self.live.registry.unregister(self.live.name), STOP_STEP)
            await self.sequencer.close()
            tracer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.redis.aclose(), STOP_STEP)
            try:
                await asyncio.wait_for(self.pool.close(), STOP_STEP)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                self.pool.terminate()

    def stopping(self) -> None:
        """A stop signal arrived (this may run inside the signal handler, between any two bytecodes of the loop):
        requests waiting for the sequencer's acknowledgement or their command's events get STOP_RESULT_WAIT more,
        then an unknown outcome (-1007)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.call_later, STOP_RESULT_WAIT, self._release)

    def _release(self) -> None:
        if self.sequencer is not None:
            self.sequencer.release()
        if self.live is not None:
            self.live.release_waiters()

    async def _connect(self) -> asyncpg.Pool:
        """A pool on PostgreSQL, with the schema applied; waits for a server that is starting (the Procfile starts
        everything at once)."""
        delay = 0.1
        while True:
            try:
                pool = await asyncpg.create_pool(self.settings.postgres_url, min_size=1, max_size=8, timeout=5)
                async with pool.acquire() as conn:
                    await migrate(conn)  # the history tables may not exist yet if no persister ran
                return pool
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("PostgreSQL at %s: %s; retrying in %.1f s", self.settings.postgres_url, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    # --- plumbing --------------------------------------------------------------------------------------------

    async def params(self, request: Request) -> Params:
        return params_of(request.url.query, await request.body())

    async def signed(self, request: Request, operation: str) -> tuple[Caller, Params]:
        params = await self.params(request)
        return await self.authorize(request.headers.get("x-mbx-apikey"), params, operation), params

    async def authorize(self, api_key: str | None, params: Params, operation: str) -> Caller:
        """The caller of a signed request for ``operation``; a request that changes orders must not be a replay."""
        assert self.keys is not None
        return await authenticate(self.keys, api_key, params, now_ms(), self.once if operation in MUTATING else None)

    async def once(self, key_id: str, signature: str, valid_ms: int) -> bool:
        """Claim a signature for as long as its request could be accepted (shared by every gateway process)."""
        assert self.redis is not None
        try:
            claimed = await self.redis.set(f"mercury:signature:{key_id}:{signature}", b"", nx=True, px=max(1, valid_ms))
        except aioredis.RedisError as exc:  # Redis down, or no connection free within REDIS_WAIT: nothing was sent on
            raise errors.UNAVAILABLE from exc
        return bool(claimed)

    def symbol(self, params: Params) -> SymbolSpec:
        spec = self.specs.get(params.required("symbol"))
        if spec is None:
            raise errors.INVALID_SYMBOL
        return spec

    async def submit(self, cmd: Command) -> int:
        assert self.sequencer is not None
        try:
            ack = await self.sequencer.submit(cmd)
        except CommandRefused as exc:
            raise errors.refused_ack(AckStatus(exc.status), exc.detail) from None
        except SequencerUnavailable:
            raise errors.UNKNOWN_OUTCOME from None
        return ack.in_seq

    async def result(self, in_seq: int) -> list[Event]:
        assert self.live is not None
        events = await self.live.result(in_seq, RESULT_TIMEOUT)
        if events is None:
            raise errors.UNKNOWN_OUTCOME
        return events

    async def caught_up(self) -> History:
        """The history store, once it reflects everything this gateway has seen (bounded wait)."""
        assert self.history is not None and self.live is not None
        if not await self.history.wait_until(self.live.out_seq, HISTORY_TIMEOUT):
            raise errors.ApiError(503, -1007, "History is catching up with the engine; retry shortly.", 1)
        return self.history

    def rest(self, name: str) -> Handler:
        """The REST handler of operation ``name``: public ones take the request, signed ones the caller and params
        (the WebSocket API calls the same operations)."""
        op = getattr(self, name)
        if name in PUBLIC:
            return cast(Handler, op)

        async def signed_handler(request: Request) -> Response:
            caller, params = await self.signed(request, name)
            return JSONResponse(await op(caller, params, request.state.limit_headers))

        return signed_handler

    # --- public ----------------------------------------------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        return JSONResponse({})

    async def time(self, request: Request) -> Response:
        return JSONResponse({"serverTime": now_ms()})

    async def exchange_info(self, request: Request) -> Response:
        params = await self.params(request)
        return JSONResponse(self.formats.exchange_info(now_ms(), params.symbols()))

    # --- account ---------------------------------------------------------------------------------------------

    async def account(self, caller: Caller, params: Params, headers: dict[str, str]) -> Any:
        assert self.live is not None
        live = self.live
        return self.formats.account(caller.account, live.balances(caller.account), live.fee_rates.get(caller.account),
                                    now_ms(), omit_zero=params.boolean("omitZeroBalances"))  # fmt: skip

    async def commission(self, caller: Caller, params: Params, headers: dict[str, str]) -> Any:
        spec = self.symbol(params)
        assert self.live is not None
        return self.formats.commission(spec, self.live.fee_rates.get(caller.account))

    async def trade_fee(self, caller: Caller, params: Params, headers: dict[str, str]) -> Any:
        specs = [self.symbol(params)] if params.get("symbol") is not None else list(self.specs.values())
        assert self.live is not None
        return self.formats.trade_fees(specs, self.live.fee_rates.get(caller.account))

    async def order_rate_limits(self, caller: Caller, params: Params, headers: dict[str, str]) -> Any:
        return self.limiter.order_counts(caller.account, now_ms())

    # --- orders ----------------------------------------------------------------------------------------------

    def place_command(self, caller: Caller, params: Params) -> tuple[PlaceOrder, str]:
        """The PlaceOrder a POST /api/v3/order asks for, and its response type; raises the filter errors."""
        spec = self.symbol(params)
        side = params.enum("side", Side, errors.INVALID_SIDE)
        typ = params.enum("type", OrderType, errors.INVALID_TYPE)
        market = typ is OrderType.MARKET
        if typ is OrderType.LIMIT:
            tif = params.enum("timeInForce", TimeInForce, errors.INVALID_TIF)
        elif params.get("timeInForce") is not None:
            raise errors.not_required("timeInForce")
        else:
            tif = TimeInForce.IOC if market else TimeInForce.GTC
        price = params.price(spec)
        if market and price is not None:
            raise errors.not_required("price")
        if not market and price is None:
            raise errors.mandatory("price")
        qty = params.quantity(spec, market)
        quote_qty = 0
        quote = params.decimal("quoteOrderQty")
        if quote is not None:
            if not market:
                raise errors.not_required("quoteOrderQty")
            if qty is not None:
                raise errors.bad(-1106, "Parameter 'quoteOrderQty' sent when 'quantity' is sent.")
            units = quote.scaleb(self.decimals[spec.quote])
            if units != units.to_integral_value() or units <= 0:
                raise errors.bad(-1111, "Precision is over the maximum defined for this asset.")
            quote_qty = int(units)
        elif qty is None:
            raise errors.mandatory("quoteOrderQty" if market else "quantity")
        stp_text = params.get("selfTradePreventionMode")
        stp = SelfTradeMode.EXPIRE_TAKER
        if stp_text is not None:
            try:
                stp = SelfTradeMode[stp_text]
            except KeyError:
                if stp_text in ("DECREMENT", "TRANSFER"):  # Binance's modes this venue does not offer
                    raise errors.STP_NOT_ALLOWED from None
                modes = ", ".join(m.name for m in SelfTradeMode)
                raise errors.illegal("selfTradePreventionMode", f"one of {modes}") from None
        _refuse_unsupported(params)
        resp_type = params.get("newOrderRespType") or "FULL"
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise errors.INVALID_RESP_TYPE
        client_oid = params.client_id("newClientOrderId") or "mx-" + secrets.token_hex(11)
        assert self.sequencer is not None
        cmd = PlaceOrder(self.sequencer.src, self.sequencer.next_req(), caller.account, spec.symbol, side, typ, tif,
                         price or 0, qty or 0, client_oid, stp, quote_qty)  # fmt: skip
        return cmd, resp_type

    def count_order(self, caller: Caller, headers: dict[str, str]) -> None:
        self.limiter.order(caller.account, now_ms(), headers)

    async def new_order(self, caller: Caller, params: Params, headers: dict[str, str]) -> Any:
        cmd, resp_type = self.place_command(caller, params)
        self.count_order(caller, headers)
        in_seq = await self.submit(cmd)
        if resp_type == "ACK":
            # journaled, not yet applied: the engine will number the order with this in_seq (engine.matching,
            # "Order ids"), so the id is known now; should the engine refuse the order, no order has it
            return ({"symbol": cmd.symbol, "orderId": in_seq, "orderListId": -1,
                                 "clientOrderId": cmd.client_oid, "transactTime": now_ms()})  # fmt: skip
        events = await self.result(in_seq)
        first = events[0]
        if isinstance(first, OrderRejected):
            raise errors.rejected(first.reason, first.detail, market=cmd.type is OrderType.MARKET)
        if not isinstance(first, OrderAccepted):
            raise errors.INTERNAL
        return self.order_response(first.order_id, events, full=resp_type == "FULL")

    def order_response(self, order_id: int, events: list[Event], full: bool) -> dict[str, Any]:
        assert self.live is not None
        row = self.live.recent.get(order_id) or self.live.model.open.get(order_id)
        if row is None:
            raise errors.INTERNAL
        body = self.formats.order(row, full=False)
        body["transactTime"] = events[0].ts // 1_000_000
        body["workingTime"] = row.created_ts // 1_000_000
        body["origQuoteOrderQty"] = self.formats.money(self.specs[row.symbol].quote, row.quote_qty)
        body["selfTradePreventionMode"] = row.stp
        if full:
            spec = self.specs[row.symbol]
            trades = [ev for ev in events if isinstance(ev, TradeExecuted)]
            body["fills"] = self.formats.fills(spec, order_id, trades)
            stops = [self.formats.prevented(spec, ev.match_id, ev.maker_order_id, ev.price, ev.taker_qty, ev.maker_qty)
                     for ev in events if isinstance(ev, MatchPrevented) and ev.taker_order_id == order_id]  # fmt: skip
            if stops:
                body["preventedMatches"] = stops
        if row.prevented_qty:  # self-trade prevention expired it
            body["preventedQuantity"] = self.formats.qty(self.specs[row.symbol], row.prevented_qty)
        return body

    async def cancel_replace(self, caller: Caller, params: Params, headers: dict[str, str]) -> Any:
        """Cancel an order and place a new one. When the new order is the same kind of resting order on the same
        side (what editing an order is), it goes to the engine as one ReplaceOrder: atomic, and it keeps its queue
        place when only the quantity shrinks. Otherwise the cancel and the new order are two commands, as on
        Binance; with STOP_ON_FAILURE no new order is placed when the cancel fails."""
        spec = self.symbol(params)
        _refuse_cancel_restrictions(params)
        mode = params.required("cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise errors.illegal("cancelReplaceMode", "STOP_ON_FAILURE or ALLOW_FAILURE")
        cancel_id = params.integer("cancelOrderId", low=1)
        cancel_coid = params.get("cancelOrigClientOrderId")
        if cancel_id is None and cancel_coid is None:
            raise errors.mandatory("cancelOrderId")
        cmd, resp_type = self.place_command(caller, params)
        self.count_order(caller, headers)
        assert self.live is not None and self.sequencer is not None
        old = self.live.open_order(caller.account, spec.symbol, cancel_id, cancel_coid)
        if (old is not None and old.side == cmd.side.name and old.type == cmd.type.name and old.tif == "GTC"
                and cmd.tif is TimeInForce.GTC and cmd.type is not OrderType.MARKET):  # fmt: skip
            replace = ReplaceOrder(cmd.src, cmd.req, caller.account, spec.symbol, old.order_id, "", cmd.client_oid,
                                   cmd.price, cmd.qty)  # fmt: skip
            events = await self.result(await self.submit(replace))
            first = events[0]
            if isinstance(first, CancelRejected):
                raise _replace_failed(errors.rejected(first.reason, first.detail, cancel=True))
            if not isinstance(first, OrderReplaced):
                raise errors.INTERNAL
            old_body = self.formats.order(old, full=False)
            old_body.update(status="CANCELED", origClientOrderId=old.client_oid, transactTime=first.ts // 1_000_000)
            new_body = self.order_response(first.new_order_id, events, full=resp_type == "FULL")
            return _replaced(old_body, new_body)
        cancel = CancelOrder(cmd.src, self.sequencer.next_req(), caller.account, spec.symbol, cancel_id or 0,
                             cancel_coid or "")  # fmt: skip
        events = await self.result(await self.submit(cancel))
        first = events[0]
        cancel_error: ApiError | None = None
        cancel_body: dict[str, Any] | None = None
        if isinstance(first, OrderCanceled):
            cancel_body = self.canceled(first.order_id)
        else:
            cancel_error = (
                errors.rejected(first.reason, first.detail, cancel=True)
                if isinstance(first, CancelRejected)
                else errors.INTERNAL
            )
            if mode == "STOP_ON_FAILURE":
                raise _replace_failed(cancel_error)
        placed = await self.result(await self.submit(msgspec.structs.replace(cmd, req=self.sequencer.next_req())))
        accepted = placed[0]
        if isinstance(accepted, OrderRejected):
            new_error = errors.rejected(accepted.reason, accepted.detail, market=cmd.type is OrderType.MARKET)
            raise _replace_failed(new_error, cancel_body, cancel_error)
        if not isinstance(accepted, OrderAccepted):
            raise errors.INTERNAL
        new_body = self.order_response(accepted.order_id, placed, full=resp_type == "FULL")
        if cancel_error is not None:  # ALLOW_FAILURE: the new order stands although the cancel failed
            raise _replace_failed(None, None, cancel_error, new_body)
        assert cancel_body is not None
        return _replaced(cancel_body, new_body)

    async def test_order(self, caller: Caller, params: Params, headers: dict[str, str]) -> Any:
        self.place_command(caller, params)  # validated as a real one would be, never sent
        return {}

    def order_ref(self, params: Params) -> tuple[SymbolSpec, int | None, str | None]:
        """The symbol and the order a cancel or a query names: by orderId or origClientOrderId (one is needed)."""
        spec = self.symbol(params)
        order_id = params.integer("orderId", low=1)
        client_oid = params.get("origClientOrderId")
        if order_id is None and client_oid is None:
            raise errors.mandatory("orderId")
        return spec, order_id, client_oid

    async def cancel_order(self, caller: Caller, params: Params, headers: dict[str, str]) -> Any:
        _refuse_cancel_restrictions(params)
        spec, order_id, client_oid = self.order_ref(params)
        assert self.sequencer is not None
        cmd = CancelOrder(self.sequencer.src, self.sequencer.next_req(), caller.account, spec.symbol, order_id or 0,
                          client_oid or "")  # fmt: skip
        events = await self.result(await self.submit(cmd))
        first = events[0]
        if isinstance(first, CancelRejected):
            raise errors.rejected(first.reason, first.detail, cancel=True)
        if not isinstance(first, OrderCanceled):
            raise errors.INTERNAL
        body = self.canceled(first.order_id)
        body["clientOrderId"] = params.client_id("newClientOrderId") or body["clientOrderId"]
        return body

    def canceled(self, order_id: int) -> dict[str, Any]:
        assert self.live is not None
        row = self.live.recent.get(order_id)
        if row is None:
            raise errors.INTERNAL
        body = self.formats.order(row, full=False)
        body["origClientOrderId"] = row.client_oid
        body["transactTime"] = row.updated_ts // 1_000_000
        body["selfTradePreventionMode"] = row.stp
        return body

    async def cancel_all(self, caller: Caller, params: Params, headers: dict[str, str]) -> Any:
        spec = self.symbol(params)
        assert self.sequencer is not None
        cmd = CancelAll(self.sequencer.src, self.sequencer.next_req(), caller.account, spec.symbol)
        events = await self.result(await self.submit(cmd))
        if isinstance(events[0], CancelRejected):
            raise errors.UNKNOWN_ORDER_CANCEL
        bodies = []
        for ev in events:
            if isinstance(ev, OrderCanceled):
                bodies.append(self.canceled(ev.order_id))
        return bodies

    async def query_order(self, caller: Caller, params: Params, headers: dict[str, str]) -> Any:
        spec, order_id, client_oid = self.order_ref(params)
        assert self.live is not None
        row: OrderRow | None = self.live.order(caller.account, spec.symbol, order_id, client_oid)
        if row is None:
            row = await (await self.caught_up()).order(caller.account, spec.symbol, order_id, client_oid)
        if row is None:
            raise errors.UNKNOWN_ORDER_QUERY
        return self.formats.order(row)

    async def open_orders(self, caller: Caller, params: Params, headers: dict[str, str]) -> Any:
        symbol = self.symbol(params).symbol if params.get("symbol") is not None else None
        assert self.live is not None
        return [self.formats.order(o) for o in self.live.open_orders(caller.account, symbol)]

    async def all_orders(self, caller: Caller, params: Params, headers: dict[str, str]) -> Any:
        spec = self.symbol(params)
        history = await self.caught_up()
        rows = await history.orders(caller.account, spec.symbol, **self.page(params, "orderId"))
        return [self.formats.order(o) for o in rows]

    async def my_trades(self, caller: Caller, params: Params, headers: dict[str, str]) -> Any:
        spec = self.symbol(params)
        history = await self.caught_up()
        page = self.page(params, "fromId")
        fills = await history.trades(caller.account, spec.symbol, order_id=params.integer("orderId", low=1), **page)
        return [self.formats.my_trade(f) for f in fills]

    async def my_prevented_matches(self, caller: Caller, params: Params, headers: dict[str, str]) -> Any:
        """Binance's combinations: symbol + preventedMatchId, or symbol + orderId (+ fromPreventedMatchId, limit)."""
        spec = self.symbol(params)
        match_id = params.integer("preventedMatchId", low=0)
        order_id = params.integer("orderId", low=1)
        from_id = params.integer("fromPreventedMatchId", low=0)
        limit = params.integer("limit", low=1, high=1000)
        if (match_id is None) == (order_id is None) or (match_id is not None and (from_id, limit) != (None, None)):
            raise errors.BAD_COMBINATION
        history = await self.caught_up()
        matches = await history.prevented_matches(caller.account, spec.symbol, match_id=match_id, order_id=order_id,
                                                  from_id=from_id, limit=limit or 500)  # fmt: skip
        return [self.formats.prevented_match(m) for m in matches]

    @staticmethod
    def page(params: Params, id_name: str) -> dict[str, Any]:
        return {
            "from_id": params.integer(id_name, low=0),
            "start_ts": params.time_ns("startTime"),
            "end_ts": params.time_ns("endTime", end=True),
            "limit": params.integer("limit", low=1, high=1000) or 500,
        }


def _refuse_unsupported(params: Params) -> None:
    """Order parameters Binance knows that would change what the order does, refused rather than ignored: an
    iceberg placed in full, or a stop that rests as a plain limit, is not the order its sender meant (exchangeInfo
    says icebergAllowed false; no stop or trailing order type is listed)."""
    if params.get("icebergQty") is not None:
        raise errors.ICEBERG_NOT_SUPPORTED
    for name in ("stopPrice", "trailingDelta", "pegPriceType", "pegOffsetValue", "pegOffsetType"):
        if params.get(name) is not None:
            raise errors.not_required(name)


def _refuse_cancel_restrictions(params: Params) -> None:
    """``cancelRestrictions`` (cancel only a NEW, or only a PARTIALLY_FILLED, order) is refused: only the engine
    could honour it (a fill may come between the gateway's look at the order and the cancel), and it has no such
    condition; ignoring it would cancel orders the client asked to keep."""
    if params.get("cancelRestrictions") is not None:
        raise errors.not_required("cancelRestrictions")


def _replaced(cancel_body: dict[str, Any], new_body: dict[str, Any]) -> dict[str, Any]:
    return {"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS", "cancelResponse": cancel_body,
            "newOrderResponse": new_body}  # fmt: skip


def _replace_failed(
    new_error: ApiError | None,
    cancel_body: dict[str, Any] | None = None,
    cancel_error: ApiError | None = None,
    new_body: dict[str, Any] | None = None,
) -> ApiError:
    """Binance's answers to a cancel-replace that did not fully succeed: -2022 (400) when nothing changed, -2021
    (409) when one half went through."""
    if cancel_body is None and new_body is None:  # the cancel failed and nothing else happened
        error = cancel_error or new_error
        assert error is not None
        failed = ApiError(400, -2022, "Order cancel-replace failed.")
        failed.data = {"cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                       "cancelResponse": error.body(), "newOrderResponse": None}  # fmt: skip
        return failed
    failed = ApiError(409, -2021, "Order cancel-replace partially failed.")
    failed.data = {
        "cancelResult": "SUCCESS" if cancel_body is not None else "FAILURE",
        "newOrderResult": "SUCCESS" if new_body is not None else "FAILURE",
        "cancelResponse": cancel_body if cancel_body is not None else cancel_error.body() if cancel_error else None,
        "newOrderResponse": new_body if new_body is not None else new_error.body() if new_error else None,
    }
    return failed


Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")


def _guarded(handler: Handler, weight: Weight, limiter: RateLimiter) -> Handler:
    """Rate limits (``weight``, by the query's parameters where Binance weighs so), then the handler; every
    refusal as Binance's JSON, with the limit headers; never a 500 for bad input (an unexpected error is logged and
    answered -1000)."""

    async def run(request: Request) -> Response:
        headers: dict[str, str] = {}
        request.state.limit_headers = headers

        async def attempt() -> Response:
            cost = spent(weight, request.query_params)
            limiter.request(request.client.host if request.client else "", cost, now_ms(), headers)
            return await handler(request)

        outcome = await answered(attempt, headers, f"{request.method} {request.url.path}")
        response = outcome if isinstance(outcome, Response) else JSONResponse(outcome[1], status_code=outcome[0])
        response.headers.update(headers)
        return response

    return run


async def answered(attempt: Callable[[], Awaitable[T]], headers: dict[str, str], what: str) -> T | tuple[int, Any]:
    """``attempt()``, or the (status, body) of Binance's error it raised; never a 500 for bad input (an unexpected
    error is logged and answered -1000)."""
    try:
        return await attempt()
    except ApiError as exc:
        return exc.answer(headers)
    except HistoryError as exc:
        return 400, {"code": -1100, "msg": str(exc)}
    except Exception:
        log.exception("%s failed", what)
        return 500, errors.INTERNAL.body()


def redis_client(url: str) -> aioredis.Redis:
    """The gateway's Redis client. Every mutating request holds a connection for its signature claim, so a burst
    has as many in flight as requests: redis-py's default pool refuses the 101st connection outright (answered 500
    under load), where this one makes a request wait up to REDIS_WAIT for a free one."""
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=REDIS_CONNECTIONS, timeout=REDIS_WAIT,
                                                    socket_connect_timeout=2)  # fmt: skip
    return aioredis.Redis.from_pool(pool)


class FastPath:
    """New orders and cancels (most of a trading bot's requests) as a bare ASGI handler in front of starlette: the
    same operations and answers, without starlette's middleware and routing layers on every order."""

    ROUTES: ClassVar[dict[tuple[str, str], str]] = {
        ("POST", "/api/v3/order"): "new_order",
        ("DELETE", "/api/v3/order"): "cancel_order",
    }

    def __init__(self, app: Starlette, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway
        self.endpoints = metrics.Endpoints(path for path, *_ in ENDPOINTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await metrics.instrumented(self._dispatch, self.endpoints, scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) not in self.ROUTES:
            await self.app(scope, receive, send)
            return
        gateway = self.gateway
        name = self.ROUTES[(scope["method"], scope["path"])]
        operation = getattr(gateway, name)
        headers: dict[str, str] = {}
        api_key = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-mbx-apikey"), None)
        client = scope.get("client")

        async def attempt() -> tuple[int, Any]:
            gateway.limiter.request(client[0] if client else "", 1, now_ms(), headers)
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if len(body) > MAX_BODY or not message.get("more_body"):
                    break
            params = params_of(scope["query_string"].decode("latin-1"), body)
            caller = await gateway.authorize(api_key, params, name)
            return 200, await operation(caller, params, headers)

        status, payload = await answered(attempt, headers, f"{scope['method']} {scope['path']}")
        content = json.dumps(payload, separators=(",", ":")).encode()
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
        raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": content})


UI_BUILD = Path(__file__).resolve().parents[2] / "ui" / "dist"
PUBLIC = frozenset({"ping", "time", "exchange_info"})
MUTATING = frozenset({"new_order", "cancel_order", "cancel_replace", "cancel_all"})  # a replay is refused
# (path, method, handler name, Binance's request weight: a number, or by the parameters)
ENDPOINTS = (
    ("/api/v3/ping", "GET", "ping", 1),
    ("/api/v3/time", "GET", "time", 1),
    ("/api/v3/exchangeInfo", "GET", "exchange_info", 20),
    ("/api/v3/account", "GET", "account", 20),
    ("/api/v3/account/commission", "GET", "commission", 20),
    ("/sapi/v1/asset/tradeFee", "GET", "trade_fee", 1),
    ("/api/v3/rateLimit/order", "GET", "order_rate_limits", 40),
    ("/api/v3/order", "POST", "new_order", 1),
    ("/api/v3/order", "DELETE", "cancel_order", 1),
    ("/api/v3/order", "GET", "query_order", 4),
    ("/api/v3/order/test", "POST", "test_order", 1),
    ("/api/v3/order/cancelReplace", "POST", "cancel_replace", 1),
    ("/api/v3/openOrders", "GET", "open_orders", OPEN_ORDERS),
    ("/api/v3/openOrders", "DELETE", "cancel_all", 1),
    ("/api/v3/allOrders", "GET", "all_orders", 20),
    ("/api/v3/myTrades", "GET", "my_trades", MY_TRADES),
    ("/api/v3/myPreventedMatches", "GET", "my_prevented_matches", MY_PREVENTED_MATCHES),
)


def _bound(op: Callable[[Gateway, Request], Awaitable[Any]], gw: Gateway) -> Handler:
    async def handler(request: Request) -> Response:
        return JSONResponse(await op(gw, request))

    return handler


def create_app(settings: Settings, venue: Venue, cipher: SecretCipher) -> FastPath:
    gw = Gateway(settings, venue, cipher)
    routes: list[BaseRoute] = [
        Route(path, _guarded(gw.rest(name), weight, gw.limiter), methods=[method])
        for path, method, name, weight in ENDPOINTS
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        msg = "Unknown endpoint." if status == 404 else "Method not allowed for this endpoint."
        return JSONResponse({"code": -1000, "msg": msg}, status_code=status)

    async def ws_api(websocket: WebSocket) -> None:
        await wsapi.endpoint(websocket, gw)

    async def user_stream(websocket: WebSocket) -> None:
        await listenkey.stream(gw, websocket, websocket.path_params["listen_key"])

    for method, op in (("POST", listenkey.create), ("PUT", listenkey.keep_alive), ("DELETE", listenkey.close)):
        routes.append(Route("/api/v3/userDataStream", _guarded(_bound(op, gw), 2, gw.limiter), methods=[method]))
    stream_endpoints = (
        ("/api/v3/userDataStream", "POST", "user_stream_create", 2),
        ("/api/v3/userDataStream", "PUT", "user_stream_keep_alive", 2),
        ("/api/v3/userDataStream", "DELETE", "user_stream_close", 2),
    )
    spec = openapi.document(ENDPOINTS + stream_endpoints, PUBLIC, [s.symbol for s in venue.symbols])

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(spec)

    async def ui_config(request: Request) -> Response:
        """Where the trading UI (served below) finds market data: the first feed, on this host."""
        host = request.url.hostname or settings.feed_host
        # Prometheus and the inference service are named by the front door's answer only (frontdoor/nginx.py):
        # a gateway cannot know they run, and the UI's requests to a port where nothing listens fail loudly
        return JSONResponse({"marketRest": f"http://{host}:{settings.feed_rest_port}",
                             "marketWs": f"ws://{host}:{settings.feed_ws_port}"})  # fmt: skip

    async def ui_home(request: Request) -> Response:
        return RedirectResponse("/ui/")

    routes.append(Route("/openapi.json", openapi_json, methods=["GET"]))
    routes.append(Route("/", ui_home, methods=["GET"]))
    routes.append(Route("/ui-config.json", ui_config, methods=["GET"]))
    # the trading UI's production build (ui/, built by ./mercury start); missing, /ui/ answers the JSON 404
    routes.append(Mount("/ui", StaticFiles(directory=UI_BUILD, html=True, check_dir=False)))
    routes.append(WebSocketRoute("/ws-api/v3", ws_api))
    routes.append(WebSocketRoute("/ws/{listen_key}", user_stream))
    app = Starlette(routes=routes, lifespan=gw.lifespan, exception_handlers={404: not_found, 405: not_found})
    return FastPath(app, gw)
