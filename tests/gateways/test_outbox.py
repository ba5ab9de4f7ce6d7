"""A user-data client's outgoing queue (gateways/http/outbox.py) on its own: order kept up to QUEUE unread texts;
one more drops the client, discarding what it has not read so that the end marker is the next thing its writer
gets; nothing is queued after that. (tests/gateways/test_ws_api.py drives it through a real slow socket.)"""

from __future__ import annotations

import asyncio

from gateways.http.outbox import QUEUE, Outbox


def drain(box: Outbox) -> list[str | None]:
    async def take() -> list[str | None]:
        return [await box.get() for _ in range(box.queue.qsize())]

    return asyncio.run(take())


def test_texts_come_out_in_order_and_the_streams_own_end_last() -> None:
    box = Outbox()
    for i in range(QUEUE):
        box.put(str(i))
    box.end("closed")  # the stream's end fits even in a full queue
    assert drain(box) == [str(i) for i in range(QUEUE)] + ["closed"]
    assert not box.overflowed


def test_one_more_than_the_queue_drops_the_client_with_the_end_marker_next() -> None:
    box = Outbox()
    for i in range(QUEUE + 1):
        box.put(str(i))
    assert box.overflowed
    box.put("after")  # ignored: the client is being dropped
    box.end("closed")  # ignored too: the end it gets says why it was dropped
    assert drain(box) == [None]
