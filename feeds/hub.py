"""Who listens to what, and the fan-out: each message is encoded once per stream (and once more for combined-stream
connections, which get it wrapped) and framed once, and the same bytes go to every subscriber.

A server's WebSocket frames are not masked, so a frame is the same bytes for every client: it is built once with
websockets' own framing, and each client's frames of one engine batch (or one timer tick) are written in one
``transport.write``. The per-client cost is then one write per batch, whatever the number of streams.

A client's send queue is its connection's write buffer. Writes never wait, so a slow client never delays the feed or
the others; one whose buffer passes ``max_queue`` bytes is told why (close code 1008) and dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import Counter, Gauge
from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from feeds import payloads as pl
from feeds.candles import window_minutes
from feeds.market import Market, SymbolChanges
from feeds.streams import WINDOWS, Stream
from persistence.klines import Kline
from wire.enums import Side

log = logging.getLogger("mercury.feed.hub")

SENT = Counter("mercury_feed_messages_sent", "Stream messages written to clients")
DROPPED = Counter("mercury_feed_slow_clients_dropped", "Clients disconnected for a full send queue")
CLIENTS = Gauge("mercury_feed_clients", "Open market-data WebSocket connections")
# the send queue (bytes still in the write buffer) of the most backed-up client written to at the last flush: how
# close the slowest reader is to feed_max_queue, read from what the flush checks anyway
DEEPEST_QUEUE = Gauge("mercury_feed_client_queue_bytes_max", "Deepest client send queue at the last flush, bytes")
TICKER_EVERY = 1.0  # s: Binance's rate for tickers and the all-market arrays


@dataclass(eq=False)
class Client:
    ws: ServerConnection
    combined: bool
    streams: dict[str, Stream] = field(default_factory=dict)
    out: list[bytes] = field(default_factory=list)  # frames waiting for the end of the batch

    def queued(self) -> int:
        transport = self.ws.transport
        return 0 if transport is None else transport.get_write_buffer_size()


@dataclass(slots=True)
class Pending:
    """Depth changes gathered for one (symbol, rate) since its last message."""

    first: int = 0
    last: int = 0
    levels: dict[tuple[Side, int], int] = field(default_factory=dict)


class Hub:
    def __init__(self, market: Market, max_queue: int) -> None:
        self.market = market
        self.texts = pl.texts_for(market.venue)
        self.max_queue = max_queue
        self.clients: set[Client] = set()
        self.by_stream: dict[str, set[Client]] = {}
        self.streams: dict[str, Stream] = {}  # name -> parsed, for every stream with a subscriber
        self.pending: dict[tuple[str, int], Pending] = {}  # (symbol, rate) of subscribed depth streams
        self.dirty_partial: dict[int, set[str]] = {100: set(), 1000: set()}
        self.tickers_due: set[str] = set()  # symbols that traded or moved their book since the last ticker
        self.best: dict[str, tuple[Any, Any]] = {}  # symbol -> the top of book last sent on bookTicker
        self.touched: list[Client] = []  # clients with frames queued since the last flush

    # subscriptions ---------------------------------------------------------------------------------------------

    def add(self, client: Client) -> None:
        self.clients.add(client)
        CLIENTS.set(len(self.clients))

    def remove(self, client: Client) -> None:
        for name in list(client.streams):
            self.unsubscribe(client, name)
        self.clients.discard(client)
        CLIENTS.set(len(self.clients))

    def subscribe(self, client: Client, stream: Stream) -> None:
        if stream.name in client.streams:
            return  # a repeated SUBSCRIBE is acknowledged again but never duplicates the stream
        client.streams[stream.name] = stream
        self.by_stream.setdefault(stream.name, set()).add(client)
        self.streams[stream.name] = stream
        if stream.kind == "depth":
            self.pending.setdefault((stream.symbol, stream.rate), Pending())

    def unsubscribe(self, client: Client, name: str) -> None:
        stream = client.streams.pop(name, None)
        if stream is None:
            return
        listeners = self.by_stream.get(name)
        if listeners is not None:
            listeners.discard(client)
            if not listeners:
                del self.by_stream[name]
                del self.streams[name]
                if stream.kind == "depth" and not self._has_depth(stream):
                    self.pending.pop((stream.symbol, stream.rate), None)

    def _has_depth(self, stream: Stream) -> bool:
        return any(s.kind == "depth" and s.symbol == stream.symbol and s.rate == stream.rate
                   for s in self.streams.values())  # fmt: skip

    # fan-out ---------------------------------------------------------------------------------------------------

    def send(self, name: str, payload: Any) -> None:
        """Encode and frame ``payload`` once (and once wrapped) and queue it for every subscriber of ``name``;
        ``flush`` writes it."""
        listeners = self.by_stream.get(name)
        if not listeners:
            return
        raw = orjson.dumps(payload)
        plain: bytes | None = None
        wrapped: bytes | None = None
        touched = self.touched
        for client in listeners:
            if client.combined:
                if wrapped is None:
                    wrapped = _frame(b'{"stream":"' + name.encode() + b'","data":' + raw + b"}")
                frame = wrapped
            else:
                if plain is None:
                    plain = _frame(raw)
                frame = plain
            if not client.out:
                touched.append(client)
            client.out.append(frame)

    def flush(self) -> None:
        """Write each client's queued frames in one go (or drop the client if its queue is full)."""
        sent = deepest = 0
        for client in self.touched:
            out, client.out = client.out, []
            ws = client.ws
            if ws.protocol.state is not State.OPEN or ws.transport is None:
                continue
            queued = client.queued()
            if queued > self.max_queue:
                self.drop(client, f"slow consumer: more than {self.max_queue} bytes waiting to be sent")
                continue
            deepest = max(deepest, queued)
            ws.transport.write(out[0] if len(out) == 1 else b"".join(out))
            sent += len(out)
        self.touched.clear()
        SENT.inc(sent)
        DEEPEST_QUEUE.set(deepest)

    def drop(self, client: Client, why: str) -> None:
        DROPPED.inc()
        log.info("dropping client %s: %s", client.ws.remote_address, why)
        self.remove(client)
        asyncio.get_running_loop().create_task(client.ws.close(1008, why))

    def publish(self, changes: dict[str, SymbolChanges]) -> None:
        """One engine batch's changes to the real-time streams; the rest waits for the timers."""
        now = pl.ms(self.market.ts)
        by_stream = self.by_stream
        for symbol, c in changes.items():
            lower = symbol.lower()
            t = self.texts[symbol]
            m = self.market.symbols[symbol]
            self.tickers_due.add(symbol)
            if c.trades:
                name = lower + "@trade"
                if name in by_stream:
                    for ev in c.trades:
                        self.send(name, pl.trade(t, ev, now))
                name = lower + "@aggTrade"
                if name in by_stream:
                    for group in pl.aggregate(c.trades):
                        self.send(name, pl.agg_trade(t, group, now))
            if c.candles:
                self._candles(lower, t, c.candles, now)
            if c.first_update:
                for (sym, rate), p in self.pending.items():
                    if sym == symbol:
                        if not p.first:
                            p.first = c.first_update
                        p.last = c.last_update
                        p.levels.update(c.levels)
                        if rate == 0:
                            self._flush_depth(symbol, 0, p, now)
                for rate in (100, 1000):
                    self.dirty_partial[rate].add(symbol)
                name = lower + "@bookTicker"
                if name in by_stream:
                    best = m.book.best()
                    if self.best.get(symbol) != best:
                        self.best[symbol] = best
                        self.send(name, pl.book_ticker(t, m.book))
        self.flush()

    def _candles(self, lower: str, t: pl.SymbolTexts, candles: Iterable[Kline], now: int) -> None:
        latest: dict[tuple[str, int], Kline] = {}
        for k in candles:  # the last state of each candle the batch touched, in the order first touched
            latest[(k.interval, k.open_time)] = k
        for (interval, _), k in latest.items():
            name = f"{lower}@kline_{interval}"
            if name in self.by_stream:
                closed = self.market.symbols[k.symbol].candles.is_closed(k)
                self.send(name, pl.kline(t, k, closed, now))

    def _flush_depth(self, symbol: str, rate: int, p: Pending, now: int) -> None:
        name = symbol.lower() + "@depth" + ("" if rate == 1000 else f"@{rate}ms")
        book = self.market.symbols[symbol].book
        self.send(name, pl.depth_update(self.texts[symbol], now, p.first, p.last, p.levels, book))
        p.first = p.last = 0
        p.levels = {}

    # timers ----------------------------------------------------------------------------------------------------

    def tick(self, rate: int, now_ms: int) -> None:
        """Every ``rate`` ms: the depth diffs and partial books of that rate."""
        for (symbol, r), p in self.pending.items():
            if r == rate and p.first:
                self._flush_depth(symbol, rate, p, now_ms)
        dirty, self.dirty_partial[rate] = self.dirty_partial[rate], set()
        for symbol in dirty:
            book = self.market.symbols[symbol].book
            lower = symbol.lower()
            for levels in (5, 10, 20):
                name = f"{lower}@depth{levels}" + ("@100ms" if rate == 100 else "")
                if name in self.by_stream:
                    self.send(name, pl.partial_depth(self.texts[symbol], book, levels))
        self.flush()

    def close_candles(self, now_ns: int) -> None:
        for symbol, candles in self.market.advance(now_ns).items():
            self._candles(symbol.lower(), self.texts[symbol], candles, now_ns // pl.NS_PER_MS)
        self.flush()

    def tickers(self, now_ms: int) -> None:
        """Every second: the 24-hour tickers of the symbols that changed, and the all-market arrays."""
        due, self.tickers_due = self.tickers_due, set()
        minis: list[Any] = []
        fulls: list[Any] = []
        want_all_mini = "!miniTicker@arr" in self.by_stream
        want_all_full = "!ticker@arr" in self.by_stream
        for symbol in sorted(due):
            m = self.market.symbols[symbol]
            lower = symbol.lower()
            t = self.texts[symbol]
            w = m.candles.window()
            if want_all_mini or lower + "@miniTicker" in self.by_stream:
                mini = pl.mini_ticker(t, w, now_ms)
                minis.append(mini)
                self.send(lower + "@miniTicker", mini)
            if want_all_full or lower + "@ticker" in self.by_stream:
                last_qty = m.trades[-1].qty if m.trades else 0
                full = pl.ticker(t, w, m.book, last_qty, now_ms, now_ms)
                fulls.append(full)
                self.send(lower + "@ticker", full)
        if minis and want_all_mini:
            self.send("!miniTicker@arr", minis)
        if fulls and want_all_full:
            self.send("!ticker@arr", fulls)
        for size in WINDOWS:
            self._window_tickers(size, sorted(due), now_ms)
        self.flush()

    def _window_tickers(self, size: str, due: list[str], now_ms: int) -> None:
        """``<symbol>@ticker_<size>`` and ``!ticker_<size>@arr`` for the symbols that changed (computed only when
        someone subscribed)."""
        everything = f"!ticker_{size}@arr"
        want_all = everything in self.by_stream
        minutes = window_minutes(size)
        assert minutes is not None
        out: list[Any] = []
        for symbol in due:
            name = f"{symbol.lower()}@ticker_{size}"
            if want_all or name in self.by_stream:
                w = self.market.symbols[symbol].candles.window(minutes)
                payload = pl.window_ticker(self.texts[symbol], w, size, now_ms, now_ms)
                out.append(payload)
                self.send(name, payload)
        if out and want_all:
            self.send(everything, out)


def _frame(payload: bytes) -> bytes:
    """One unmasked text frame (a server's), the same bytes for every client."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False)
