"""A user-data client's bounded queue of outgoing texts (the WebSocket API's and the legacy listenKey stream's).

The engine's events are pushed without waiting; a client that does not read them must never hold them back nor grow
the gateway's memory (design note 4). Past ``QUEUE`` unread the client is dropped: what it has not read is
discarded, so that the end (``None``) is the next thing its writer takes, as soon as the socket takes more. A peer
that reads nothing at all is closed by the server's pings.
"""

from __future__ import annotations

import asyncio

from gateways.clock import now_ms

QUEUE = 10_000  # texts a client may have waiting before it is dropped
TOO_SLOW = f"more than {QUEUE} events unread"  # why: in the stream's end event and the close frame (code 1008)


def terminated() -> dict[str, object]:
    """Binance's end of a user data stream, ``eventStreamTerminated`` (Mercury adds the reason)."""
    return {"e": "eventStreamTerminated", "E": now_ms(), "reason": TOO_SLOW}


class Outbox:
    __slots__ = ("overflowed", "queue")

    def __init__(self) -> None:
        # one place more than QUEUE: the end marker always fits
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE + 1)
        self.overflowed = False

    def put(self, text: str) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() < QUEUE:
            self.queue.put_nowait(text)
            return
        self.overflowed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    def end(self, text: str) -> None:
        """Queue ``text`` as the last thing (the stream's own end, not the client's fault), unless it was dropped."""
        if not self.overflowed:
            self.queue.put_nowait(text)

    async def get(self) -> str | None:
        return await self.queue.get()
