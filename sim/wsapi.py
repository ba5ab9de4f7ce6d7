"""The venue's WebSocket API (``/ws-api/v3``) as an outside bot uses it: one connection for a bot's accounts,
requests matched to their replies by id, and each account's user data stream subscribed on the same socket (again
after every reconnect)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from sim.orders import Action, Cancel, Outcome, Place, Replace, Report, no_answer
from sim.rest import RECV_WINDOW, Gate, Http, backoff, json_object, replace_outcome, report_of

log = logging.getLogger("sim.wsapi")

REPLY_TIMEOUT = 10.0  # s: a reply later than this is counted as no answer
RETRY_MARGIN = 0.2  # s waited beyond a refusal's retryAfter (the venue's windows end on its own clock)


def retry_wait(error: dict[str, Any]) -> float | None:
    """Seconds to hold back after a WebSocket API refusal of a limit or a ban: until its ``data.retryAfter``,
    measured from the ``serverTime`` beside it (None when the reply gives none)."""
    data = error.get("data")
    if not isinstance(data, dict):
        return None
    until, now = data.get("retryAfter"), data.get("serverTime")
    if not isinstance(until, int) or not isinstance(now, int):
        return None
    return max(0.0, (until - now) / 1000) + RETRY_MARGIN


class Disconnected(Exception):
    pass


def signature_payload(values: dict[str, Any]) -> str:
    """What a WebSocket API signature covers: every parameter but the signature, sorted by name, as ``k=v&...``
    without percent-encoding (docs/api.md)."""
    return "&".join(f"{k}={_text(v)}" for k, v in sorted(values.items()) if k != "signature")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class WsApi:
    def __init__(self, http: Http) -> None:
        self.http = http
        self.url = http.ws_url + "/ws-api/v3"
        self.accounts: dict[int, WsTrader] = {}
        self.connected = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._subscriptions: dict[int, int] = {}  # subscriptionId -> account
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ws-api")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5)
            self._task = None

    async def call(self, method: str, params: dict[str, Any], trader: WsTrader | None = None) -> dict[str, Any]:
        """The reply to one request (signed with ``trader``'s key when given); raises Disconnected or TimeoutError."""
        ws = self._ws
        if ws is None or ws.closed:
            raise Disconnected("not connected")
        if trader is not None:
            params = {"apiKey": trader.key, "timestamp": self.http.now_ms(), "recvWindow": RECV_WINDOW, **params}
            params["signature"] = hmac.new(trader.secret, signature_payload(params).encode(),
                                           hashlib.sha256).hexdigest()  # fmt: skip
        request_id = str(next(self._ids))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await ws.send_json({"id": request_id, "method": method, "params": params})
            async with asyncio.timeout(REPLY_TIMEOUT):
                return await future
        finally:
            self._pending.pop(request_id, None)

    async def _run(self) -> None:
        pause = 0.5
        while True:
            reader: asyncio.Task[None] | None = None
            try:
                async with self.http.session.ws_connect(self.url, heartbeat=30) as ws:
                    self._ws = ws
                    self._subscriptions.clear()
                    reader = asyncio.create_task(self._read(ws))
                    for trader in list(self.accounts.values()):
                        answer = await self.call("userDataStream.subscribe.signature", {}, trader)
                        if answer.get("status") != 200:
                            raise Disconnected(f"account {trader.account}: subscribe refused: {answer.get('error')}")
                        self._subscriptions[int(answer["result"]["subscriptionId"])] = trader.account
                    self.connected.set()
                    pause = 0.5
                    await reader
            except (aiohttp.ClientError, OSError, TimeoutError, Disconnected) as exc:
                log.debug("WebSocket API: %s", exc)
            finally:
                self.connected.clear()
                self._ws = None
                if reader is not None:
                    reader.cancel()
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(Disconnected("connection lost"))
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json_object(message.data)
            if "subscriptionId" in data and "event" in data:
                account = self._subscriptions.get(int(data["subscriptionId"]))
                trader = self.accounts.get(account) if account is not None else None
                report = report_of(data["event"]) if trader is not None else None
                if trader is not None and report is not None:
                    trader.on_report(report)
                continue
            future = self._pending.get(str(data.get("id")))
            if future is not None and not future.done():
                future.set_result(data)


class WsTrader:
    """One account trading over the WebSocket API connection it shares with its bot's other accounts."""

    protocol = "ws"

    def __init__(self, api: WsApi, account: int, key: str, secret: str, on_report: Callable[[Report], None]) -> None:
        self.api = api
        self.account = account
        self.key = key
        self.secret = secret.encode()
        self.on_report = on_report
        self.gate = Gate()
        api.accounts[account] = self

    async def start(self) -> None:
        self.api.start()

    async def close(self) -> None:
        await self.api.close()

    async def ready(self) -> None:
        await self.gate.wait()
        await self.api.http.shared.wait()
        with contextlib.suppress(TimeoutError):  # not connected yet: the request will say so
            async with asyncio.timeout(5):
                await self.api.connected.wait()

    async def _call(self, method: str, params: dict[str, str], replace: bool = False) -> Outcome:
        try:
            answer = await self.api.call(method, params, self)
        except (Disconnected, TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.gate.block(0.5)
            return no_answer(f"ws {type(exc).__name__}")
        if answer.get("status") == 200:
            result = answer.get("result")
            if replace and isinstance(result, dict):
                result = result.get("newOrderResponse")
            return Outcome(ok=True, status=str(result.get("status", "")) if isinstance(result, dict) else "")
        error = answer.get("error") or {}
        code = error.get("code")
        if replace and code in (-2021, -2022):
            return replace_outcome(code, error)
        if code == -2011:
            return Outcome(ok=False, gone=True)
        outcome = Outcome(ok=False, code=code if code is not None else f"WS {answer.get('status')}",
                          msg=str(error.get("msg", "")), retry_after=retry_wait(error))  # fmt: skip
        backoff(outcome, self.gate, self.api.http.shared)
        return outcome

    async def execute(self, action: Action) -> Outcome:
        if isinstance(action, Place):
            return await self._call("order.place", action.order.params())
        if isinstance(action, Replace):
            params = {"cancelReplaceMode": "ALLOW_FAILURE", "cancelOrigClientOrderId": action.old_client_id,
                      **action.order.params()}  # fmt: skip
            return await self._call("order.cancelReplace", params, replace=True)
        assert isinstance(action, Cancel)
        return await self._call("order.cancel", {"symbol": action.symbol, "origClientOrderId": action.client_id})

    async def cancel_all(self, symbol: str) -> Outcome:
        return await self._call("openOrders.cancelAll", {"symbol": symbol})
