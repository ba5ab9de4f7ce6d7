"""A minimal HTTP/1.1 keep-alive client for the load: one request in flight per connection, responses timed as
they arrive.

aiohttp costs a few hundred microseconds of Python per request, which on a 2-core machine is CPU taken from the
venue being measured; this writes prepared bytes and parses just what the load needs (the status, the
Content-Length or chunked framing, ``"orderId":`` and ``"code":`` in the body). A connection is never pipelined, so
a request that never got an answer was never queued behind another one, and it is retired (closed once idle)
before nginx's ``keepalive_requests`` (1000) would close it under a request in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import cast

MAX_REQUESTS = 900  # per connection, below nginx's keepalive_requests

# (request index, HTTP status or 0 when the connection failed, body, ns it arrived)
Answer = Callable[[int, int, bytes, int], None]


def _int_after(body: bytes, key: bytes) -> int | None:
    """The integer value after ``key`` (e.g. b'"orderId":') in a JSON body, without parsing the JSON."""
    i = body.find(key)
    if i < 0:
        return None
    i += len(key)
    j = i
    n = len(body)
    while j < n and body[j] in b"-0123456789":
        j += 1
    try:
        return int(body[i:j])
    except ValueError:
        return None


def order_id(body: bytes) -> int | None:
    return _int_after(body, b'"orderId":')


def error_code(body: bytes) -> int | None:
    return _int_after(body, b'"code":')


class Connection(asyncio.Protocol):
    """One keep-alive connection. ``answer`` is called for each response (or with status 0 for the request in flight
    when the connection fails); ``idle`` when it can take the next request."""

    def __init__(self, answer: Answer, idle: Callable[[Connection], None], lost: Callable[[Connection], None]) -> None:
        self.answer = answer
        self.on_idle = idle
        self.on_lost = lost
        self.transport: asyncio.Transport | None = None
        self.current = -1  # the request in flight, -1 when idle
        self.count = 0
        self.buf = b""
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes

    def send(self, index: int, request: bytes) -> None:
        assert self.transport is not None and self.current < 0
        self.current = index
        self.count += 1
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        buf = self.buf + data if self.buf else data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self.buf = buf
            return
        head = buf[:end]
        length = _header_int(head, b"content-length:")
        if length is not None:
            if len(buf) < end + 4 + length:
                self.buf = buf
                return
            body = buf[end + 4 : end + 4 + length]
        else:  # chunked (nginx may re-frame a body it did not get a length for)
            parsed = _dechunk(buf, end + 4)
            if parsed is None:
                self.buf = buf
                return
            body = parsed
        self.buf = b""
        status = int(head[9:12])
        index, self.current = self.current, -1
        self.answer(index, status, body, now)
        if b"connection: close" in head.lower():
            self.closing = True
        if self.closing or self.count >= MAX_REQUESTS:
            self.closing = True
            if self.transport is not None:
                self.transport.close()
        else:
            self.on_idle(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.current >= 0:
            index, self.current = self.current, -1
            self.answer(index, 0, b"", time.time_ns())
        self.on_lost(self)


def _header_int(head: bytes, name: bytes) -> int | None:
    lower = head.lower()
    i = lower.find(name)
    if i < 0:
        return None
    j = lower.find(b"\r\n", i)
    return int(lower[i + len(name) : j if j >= 0 else len(lower)].strip())


def _dechunk(buf: bytes, start: int) -> bytes | None:
    """The body of a chunked response starting at ``start``, or None while it is incomplete."""
    out: list[bytes] = []
    i = start
    while True:
        j = buf.find(b"\r\n", i)
        if j < 0:
            return None
        size = int(buf[i:j].split(b";")[0], 16)
        if size == 0:
            return b"".join(out) if buf.find(b"\r\n", j + 2) >= 0 else None
        if len(buf) < j + 2 + size + 2:
            return None
        out.append(buf[j + 2 : j + 2 + size])
        i = j + 2 + size + 2
