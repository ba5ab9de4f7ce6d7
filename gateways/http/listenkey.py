"""The legacy user data stream (older Binance clients): ``POST /api/v3/userDataStream`` with only the API key
gives a listenKey, ``PUT`` keeps it alive, ``DELETE`` closes it, and ``/ws/<listenKey>`` streams the account's
events (the same ones as the WebSocket API's subscription, unwrapped).

A listenKey lives 60 minutes after its last keep-alive, as Binance's. The keys are Redis keys with that TTL, so
every gateway process knows them; a socket whose key expired gets ``listenKeyExpired`` and is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateways.binance import errors
from gateways.binance.auth import api_key_of
from gateways.clock import now_ms
from gateways.http.outbox import TOO_SLOW, Outbox, terminated

if TYPE_CHECKING:
    from gateways.http.app import Gateway

TTL = 3_600  # s, Binance's validity after the last keep-alive
CHECK_EVERY = 10.0  # s between checks that a connected key is still valid
CLOSED = ""  # put in a stream's queue when its socket closed: no event is an empty text


def _key(listen_key: str) -> str:
    return f"mercury:listen-key:{listen_key}"


async def _account_of_key(gateway: Gateway, request: Request) -> int:
    assert gateway.keys is not None
    key = await gateway.keys.get(api_key_of(request.headers.get("x-mbx-apikey")))
    if key is None or key.revoked_at is not None:
        raise errors.KEY_REFUSED
    return key.account


async def create(gateway: Gateway, request: Request) -> dict[str, Any]:
    account = await _account_of_key(gateway, request)
    assert gateway.redis is not None
    listen_key = secrets.token_urlsafe(45)[:60]
    await gateway.redis.set(_key(listen_key), account, ex=TTL)
    return {"listenKey": listen_key}


async def keep_alive(gateway: Gateway, request: Request) -> dict[str, Any]:
    await _owned(gateway, request)
    return {}


async def close(gateway: Gateway, request: Request) -> dict[str, Any]:
    listen_key = await _owned(gateway, request)
    assert gateway.redis is not None
    await gateway.redis.delete(_key(listen_key))
    return {}


async def _owned(gateway: Gateway, request: Request) -> str:
    """The request's listenKey, extended by TTL, if it exists and belongs to the caller's account."""
    account = await _account_of_key(gateway, request)
    params = await gateway.params(request)
    listen_key = params.required("listenKey")
    assert gateway.redis is not None
    owner = await gateway.redis.get(_key(listen_key))
    if owner is None or int(owner) != account:
        raise errors.bad(-1125, "This listenKey does not exist.")
    await gateway.redis.expire(_key(listen_key), TTL)
    return listen_key


class Stream:
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.outbox = Outbox()

    def push(self, account: int, payload: dict[str, Any]) -> None:
        self.outbox.put(json.dumps(payload, separators=(",", ":")))  # too slow: told why and dropped (Outbox)


async def stream(gateway: Gateway, ws: WebSocket, listen_key: str) -> None:
    assert gateway.redis is not None and gateway.live is not None
    owner = await gateway.redis.get(_key(listen_key))
    await ws.accept()
    if owner is None:
        await ws.send_text(json.dumps({"e": "listenKeyExpired", "E": now_ms(), "listenKey": listen_key}))
        await ws.close(code=1008, reason="unknown or expired listenKey")
        return
    account = int(owner)
    subscriber = Stream(ws)
    gateway.live.subscribe(account, subscriber)
    receiver = asyncio.create_task(_drain(ws, subscriber))
    try:
        while True:
            try:
                async with asyncio.timeout(CHECK_EVERY):  # not wait_for: 3.11's can drop a cancellation
                    text = await subscriber.outbox.get()
            except TimeoutError:
                if not await gateway.redis.exists(_key(listen_key)):
                    await ws.send_text(json.dumps({"e": "listenKeyExpired", "E": now_ms(), "listenKey": listen_key}))
                    await ws.close(code=1000, reason="listenKey expired")
                    return
                continue
            if text == CLOSED:  # the client closed, or this gateway is stopping
                return
            if text is None:
                await ws.send_text(json.dumps(terminated()))
                await ws.close(code=1008, reason=f"too slow: {TOO_SLOW}")
                return
            await ws.send_text(text)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        gateway.live.unsubscribe(account, subscriber)
        receiver.cancel()


async def _drain(ws: WebSocket, subscriber: Stream) -> None:
    """Read (and ignore) what the client sends, so that a close from its side (or from a stopping server) is seen
    and ends the stream at once, instead of at its next event or check."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await ws.receive_text()
    subscriber.outbox.end(CLOSED)
