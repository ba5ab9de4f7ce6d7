"""Stream paging and the one-round-trip appender, against a real Redis."""

from __future__ import annotations

import pytest
import redis

from tests.harness import RedisServer
from wire.streams import FIELD, StreamAppender, entries_from, last_entry, xrange


def test_appender_writes_entries_and_extra_commands_in_order(redis_server: RedisServer) -> None:
    r = redis_server.client()
    appender = StreamAppender(r)
    appender.append("s", [(1, b"one"), (3, b"two")], ("SET", "k", b"v"))
    assert [(eid, fields[FIELD]) for eid, fields in xrange(r, "s", "-")] == [(b"1-0", b"one"), (b"3-0", b"two")]
    assert r.get("k") == b"v"
    assert list(entries_from(r, "s", 2)) == [b"one", b"two"]  # the entry holding 2 is the one that starts at 1
    assert last_entry(r, "s") == b"two"
    appender.close()


def test_appender_when_id_is_not_past_the_end_raises_and_stays_usable(redis_server: RedisServer) -> None:
    r = redis_server.client()
    appender = StreamAppender(r)
    appender.append("s", [(5, b"five")])
    with pytest.raises(redis.ResponseError):
        appender.append("s", [(5, b"again")])
    appender.append("s", [(6, b"six")])  # a fresh connection after the error
    assert [fields[FIELD] for _, fields in xrange(r, "s", "-")] == [b"five", b"six"]


def test_appender_when_redis_restarts_reconnects(redis_server: RedisServer) -> None:
    r = redis_server.client()
    appender = StreamAppender(r)
    appender.append("s", [(1, b"one")])
    redis_server.kill9()
    with pytest.raises(redis.ConnectionError):
        appender.append("s", [(2, b"two")])
    redis_server.start()
    appender.append("s", [(2, b"two")])
    assert [fields[FIELD] for _, fields in xrange(r, "s", "-")] == [b"one", b"two"]
