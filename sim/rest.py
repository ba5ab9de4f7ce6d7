"""The venue's Binance-compatible REST API as an outside bot uses it: HMAC-signed requests over one aiohttp session,
the account's order reports from a listenKey user data stream, and backing off when the venue says so.

``Http`` is what every protocol client shares: the base URLs, the server clock's offset and the gates that hold
requests back after a 429 or a 503 (a per-IP weight limit and an engine that is behind concern every account of
this process; an order-count limit only its account).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp

from sim.orders import Action, Cancel, Outcome, Place, Replace, Report, no_answer

log = logging.getLogger("sim.rest")

RECV_WINDOW = 10_000  # ms: generous, as ccxt's, so a busy event loop does not get requests refused -1021
TIMEOUT = aiohttp.ClientTimeout(total=10)
TERMINAL = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"})
KEEP_ALIVE = 1_800.0  # s between listenKey keep-alives (a key lives 60 minutes after the last one)


class Unavailable(Exception):
    """The venue did not answer a public request (not up yet, restarting): try again later."""


class Gate:
    """Requests wait here while the venue has asked us to back off."""

    def __init__(self) -> None:
        self.until = 0.0  # time.monotonic() before which nothing is sent

    def block(self, seconds: float) -> None:
        self.until = max(self.until, time.monotonic() + seconds)

    async def wait(self) -> None:
        while (left := self.until - time.monotonic()) > 0:
            await asyncio.sleep(left)


class Http:
    def __init__(self, session: aiohttp.ClientSession, url: str, ws_url: str) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.ws_url = ws_url.rstrip("/")
        self.offset_ms = 0  # server clock minus ours
        self.shared = Gate()  # every REST and WebSocket API request of the process: -1003, -1008

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    async def public(self, path: str, params: dict[str, str] | None = None) -> Any:
        """An unsigned GET's JSON; ``Unavailable`` when the venue does not answer it (yet)."""
        try:
            async with self.session.get(self.url + path, params=params, timeout=TIMEOUT) as response:
                body = await response.text()
                if response.status != 200:  # not up yet (a 502 from the front door, a feed's 503), or throttled
                    raise Unavailable(f"GET {path}: HTTP {response.status} {body[:200]}")
                return json.loads(body)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise Unavailable(f"GET {path}: {exc or type(exc).__name__}") from None

    async def sync_clock(self) -> None:
        """Take the server's clock (as ccxt's adjustForTimeDifference does): a timestamp must not be ahead of it."""
        before = time.time_ns() // 1_000_000
        answer = await self.public("/api/v3/time")
        after = time.time_ns() // 1_000_000
        self.offset_ms = int(answer["serverTime"]) - (before + after) // 2


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def report_of(event: dict[str, Any]) -> Report | None:
    """An ``executionReport`` event (user data stream or WebSocket API) as a Report; None for other events."""
    if event.get("e") != "executionReport":
        return None
    kind = event.get("x")
    # a cancel's report names the order in C (c is the cancel's own id); an amendment in place names the order's
    # new client id in c
    client_id = event["c"] if kind == "REPLACED" else (event.get("C") or event["c"])
    fill = kind == "TRADE"
    return Report(symbol=event["s"], client_id=client_id, side=event["S"],
                  fill_qty=Decimal(event["l"]) if fill else Decimal(0),
                  fill_price=Decimal(event["L"]) if fill else Decimal(0), done=event.get("X") in TERMINAL)  # fmt: skip


def replace_outcome(code: int | None, body: dict[str, Any], http_status: int = 0) -> Outcome:
    """A cancel-replace that did not fully succeed (-2021 / -2022): which half went through, from its ``data``."""
    data = body.get("data")
    if not isinstance(data, dict):
        return Outcome(ok=False, code=code, msg=str(body.get("msg", "")), http_status=http_status)
    cancel_failed = data.get("cancelResult") == "FAILURE"
    cancel = data.get("cancelResponse")
    cancel_code = cancel.get("code") if cancel_failed and isinstance(cancel, dict) else None
    new = data.get("newOrderResponse")
    if data.get("newOrderResult") == "SUCCESS":
        status = new.get("status", "") if isinstance(new, dict) else ""
        return Outcome(ok=True, status=status, gone=cancel_failed, http_status=http_status)
    if cancel_code == -2011:  # the old order had filled (or gone) before the cancel: nothing to replace
        return Outcome(ok=False, gone=True, http_status=http_status)
    new_code = new.get("code") if isinstance(new, dict) else None
    failed = new if new_code else cancel if cancel_code else body
    msg = str(failed.get("msg", "")) if isinstance(failed, dict) else ""
    return Outcome(ok=False, code=new_code or cancel_code or code, msg=msg, http_status=http_status)


def backoff(outcome: Outcome, own: Gate, shared: Gate) -> None:
    """Hold requests back as the venue asked (Retry-After, or the WebSocket API's data.retryAfter): -1015 (this
    account's order count) holds the account, -1003 (the process's request weight, or its IP's ban) and -1008 (the
    engine is behind) hold everything."""
    wait = outcome.retry_after
    if outcome.code == -1015:
        own.block(wait if wait is not None else 1.0)
    elif outcome.code == -1003:
        shared.block(wait if wait is not None else 5.0)
    elif outcome.code == -1008:
        shared.block(wait if wait is not None else 1.0)


class RestTrader:
    """One account trading over REST."""

    protocol = "rest"

    def __init__(self, http: Http, account: int, key: str, secret: str, on_report: Callable[[Report], None]) -> None:
        self.http = http
        self.account = account
        self.key = key
        self.secret = secret.encode()
        self.on_report = on_report
        self.gate = Gate()
        self.failures = 0  # requests in a row without an answer: how long to wait before the next
        self._stream: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stream = asyncio.create_task(self._user_stream(), name=f"user-stream-{self.account}")

    async def close(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            await asyncio.wait([self._stream], timeout=5)

    async def ready(self) -> None:
        await self.gate.wait()
        await self.http.shared.wait()

    async def signed(self, method: str, path: str, params: dict[str, str]) -> tuple[int, Any, float | None]:
        """A signed request as Binance's clients send it (timestamp, parameters, recvWindow, then the signature
        over that exact text): its HTTP status, JSON body and Retry-After. Raises aiohttp/OS errors."""
        payload = urlencode({"timestamp": str(self.http.now_ms()), **params, "recvWindow": str(RECV_WINDOW)})
        payload += "&signature=" + hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()
        headers = {"X-MBX-APIKEY": self.key}
        url = self.http.url + path
        if method in ("GET", "DELETE"):
            url, data = f"{url}?{payload}", None
        else:
            data = payload
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        async with self.http.session.request(method, url, data=data, headers=headers, timeout=TIMEOUT) as response:
            body = json_object(await response.text())
            retry = response.headers.get("Retry-After")
            return response.status, body, float(retry) if retry and retry.isdigit() else None

    async def _call(self, method: str, path: str, params: dict[str, str], replace: bool = False) -> Outcome:
        try:
            status, body, retry = await self.signed(method, path, params)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.failures += 1
            self.gate.block(min(5.0, 0.25 * 2**self.failures))  # the gateway is down or restarting
            return no_answer(type(exc).__name__)
        self.failures = 0
        if status == 200:
            result = body.get("newOrderResponse", body) if replace else body
            return Outcome(ok=True, status=str(result.get("status", "")) if isinstance(result, dict) else "",
                           http_status=status)  # fmt: skip
        code = body.get("code")
        if status >= 500 and code is None:  # not the gateway's answer (the front door's 502): it is restarting
            self.gate.block(1.0)
            return Outcome(ok=False, transport=f"HTTP {status}", http_status=status)
        if replace and code in (-2021, -2022):
            return replace_outcome(code, body, status)
        if code == -2011:  # a cancel of an order that had filled or been canceled: not an error
            return Outcome(ok=False, gone=True, http_status=status)
        outcome = Outcome(ok=False, code=code if code is not None else f"HTTP {status}",
                          msg=str(body.get("msg", "")), retry_after=retry, http_status=status)  # fmt: skip
        backoff(outcome, self.gate, self.http.shared)
        return outcome

    async def execute(self, action: Action) -> Outcome:
        if isinstance(action, Place):
            return await self._call("POST", "/api/v3/order", action.order.params())
        if isinstance(action, Replace):
            params = {"cancelReplaceMode": "ALLOW_FAILURE", "cancelOrigClientOrderId": action.old_client_id,
                      **action.order.params()}  # fmt: skip
            return await self._call("POST", "/api/v3/order/cancelReplace", params, replace=True)
        assert isinstance(action, Cancel)
        return await self._call("DELETE", "/api/v3/order", {"symbol": action.symbol,
                                                            "origClientOrderId": action.client_id})  # fmt: skip

    async def cancel_all(self, symbol: str) -> Outcome:
        return await self._call("DELETE", "/api/v3/openOrders", {"symbol": symbol})

    # the account's order reports ----------------------------------------------------------------------------------

    async def _listen_key(self, method: str, listen_key: str = "") -> dict[str, Any]:
        url = self.http.url + "/api/v3/userDataStream"
        data = urlencode({"listenKey": listen_key}) if listen_key else None
        headers = {"X-MBX-APIKEY": self.key, "Content-Type": "application/x-www-form-urlencoded"}
        async with self.http.session.request(method, url, data=data, headers=headers, timeout=TIMEOUT) as response:
            body = json_object(await response.text())
            if response.status != 200:
                raise aiohttp.ClientResponseError(response.request_info, (), status=response.status,
                                                  message=str(body.get("msg", "")))  # fmt: skip
            return body

    async def _user_stream(self) -> None:
        """The account's executionReports from a listenKey stream, for as long as the simulator runs: a new key and
        connection whenever the gateway restarts or the key expires."""
        pause = 0.5
        while True:
            try:
                listen_key = str((await self._listen_key("POST"))["listenKey"])
                async with self.http.session.ws_connect(f"{self.http.ws_url}/ws/{listen_key}", heartbeat=30) as ws:
                    pause = 0.5
                    kept = time.monotonic()
                    while True:
                        if time.monotonic() - kept > KEEP_ALIVE:
                            await self._listen_key("PUT", listen_key)
                            kept = time.monotonic()
                        try:
                            message = await ws.receive(timeout=60)
                        except TimeoutError:
                            continue
                        if message.type != aiohttp.WSMsgType.TEXT:
                            break  # closed (the gateway restarted, or the key expired)
                        event = json_object(message.data)
                        if event.get("e") == "listenKeyExpired":
                            break
                        report = report_of(event)
                        if report is not None:
                            self.on_report(report)
            except (aiohttp.ClientError, OSError, TimeoutError, KeyError) as exc:
                log.debug("account %d: user data stream: %s", self.account, exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
