"""Which PUB topics an events-stream write goes to: the writer thread's per-event routing, with the trade tally the
metrics need folded into the same pass (a second pass over the events only to count trades by symbol cost about as
much as the rest of the metrics together: bench/reports/metrics-cost.md).

Topics: market events by symbol (``m/<symbol>/``), order events by account (``a/<id>/``), a trade to its symbol
and to both accounts. The PUB socket is an XPUB: it tells which prefixes have subscribers, so events are grouped
and encoded only for topics someone reads (fanning out every account's events cost as much as matching).
"""

from __future__ import annotations

from collections import Counter as Tally

from wire.events import BookDelta, Event, TradeExecuted

HEARTBEAT_TOPIC = b"h/"
ALL_TOPIC = b"x/"


def account_topic(account: int) -> bytes:
    return b"a/%d/" % account


def symbol_topic(symbol: str) -> bytes:
    return b"m/" + symbol.encode() + b"/"


class TopicRouter:
    def __init__(self) -> None:
        self._account_topics: dict[int, bytes] = {}
        self._symbol_topics: dict[str, bytes] = {}
        self.subscriptions: set[bytes] = set()
        self._wanted: dict[bytes, bool] = {}

    def subscribe(self, prefix: bytes) -> None:
        self.subscriptions.add(prefix)
        self._wanted.clear()

    def unsubscribe(self, prefix: bytes) -> None:
        self.subscriptions.discard(prefix)
        self._wanted.clear()

    def is_wanted(self, topic: bytes) -> bool:
        wanted = self._wanted.get(topic)
        if wanted is None:
            if len(self._wanted) > 100_000:
                self._wanted.clear()
            wanted = self._wanted[topic] = any(topic.startswith(prefix) for prefix in self.subscriptions)
        return wanted

    def route(self, events: list[Event], trades: Tally[str]) -> dict[bytes, list[Event]]:
        """The wanted topics' events, in order; counts each trade into ``trades`` by symbol on the way."""
        groups: dict[bytes, list[Event]] = {}
        accounts, symbols, wanted = self._account_topics, self._symbol_topics, self.is_wanted
        for ev in events:
            owners: tuple[int, ...]
            if isinstance(ev, BookDelta | TradeExecuted):
                topic = symbols.get(ev.symbol)
                if topic is None:
                    topic = symbols[ev.symbol] = symbol_topic(ev.symbol)
                if wanted(topic):
                    groups.setdefault(topic, []).append(ev)
                if isinstance(ev, BookDelta):
                    continue
                trades[ev.symbol] += 1
                owners = (ev.maker_account, ev.taker_account)
            else:
                owners = (ev.account,)
            for account in owners:
                topic = accounts.get(account)
                if topic is None:
                    if len(accounts) > 100_000:
                        accounts.clear()
                    topic = accounts[account] = account_topic(account)
                if wanted(topic):
                    groups.setdefault(topic, []).append(ev)
        return groups
