"""``python -m bench.feeds``: many WebSocket clients on one market-data feed process while the engine runs a flow.

A venue is started here (Redis, sequencer, engine) with one feed process. ``--procs`` client processes open
``--clients`` connections between them, each subscribed to ``btcusdt@trade`` and a depth stream, and keep every
message's arrival time. This process paces a random order flow (limit orders around a drifting mid, cancels, market
orders) at ``--rate`` commands/s and, on its own ZMQ subscription to the engine's PUB socket, notes when the engine
published each trade and each book update. Afterwards the clients turn their arrival times into latencies:

* trades: engine publishes the trade -> a client has the ``@trade`` message (the real-time path);
* depth: engine publishes the window's last change -> a client has the diff (``@depth@0ms``: one diff per engine
  batch; ``@depth@100ms``: the window adds up to 100 ms by design).

It also reports messages/s delivered by the feed process, its CPU, and the bytes of the diff stream next to what a
full book snapshot per message would have cost (one client keeps the local book to measure it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sys
import tempfile
import threading
import time
import urllib.request
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import uvloop
import zmq
from hdrh.histogram import HdrHistogram
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.machine import REPO, machine_markdown
from bench.pipeline.cpu import CLK_TCK, _ticks
from client.marketbook import LocalBook, fetch_snapshot
from engine.topics import ALL_TOPIC
from tests.feeds.conftest import MID, Flow, feed_service
from tests.harness import Venue, free_port
from wire.codec import decode_events
from wire.enums import Side
from wire.events import BookDelta, TradeExecuted

REPORT = REPO / "bench" / "reports" / "feeds.md"
SYMBOL = "BTCUSDT"
LOWEST, HIGHEST = 1, 60_000_000  # µs the histograms cover
PROBES = 20  # clients that parse every message and measure latency; the others only read (_Sink)
TRADE_PREFIX = b'{"stream":"' + SYMBOL.lower().encode() + b'@trade"'
LADDER = 250  # resting levels per side beyond the flow's prices: a book of realistic depth


def _histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST, HIGHEST, 3)


# client processes ------------------------------------------------------------------------------------------------


@dataclass
class ClientResult:
    trades: bytes  # encoded histograms (µs)
    depth: bytes
    messages: int
    bytes_in: int
    diff_bytes: int  # the depth messages one client received...
    full_bytes: int  # ... and what a full book per message would have been
    disconnected: int


async def _clients(ws_url: str, rest_url: str, count: int, depth: str, measure_book: bool, pipe: Connection) -> None:
    trade_arrivals: list[array[int]] = [array("q") for _ in range(count)]  # pairs: trade id, ns
    depth_arrivals: list[array[int]] = [array("q") for _ in range(count)]  # pairs: last update id, ns
    totals = {"messages": 0, "bytes": 0, "diff": 0, "full": 0, "closed": 0}
    stop = asyncio.Event()
    streams = f"{SYMBOL.lower()}@trade/{SYMBOL.lower()}@{depth}"

    async def one(i: int) -> None:
        book = LocalBook(SYMBOL) if measure_book and i == 0 else None
        try:
            async with connect(f"{ws_url}/stream?streams={streams}", max_queue=None, open_timeout=60) as ws:
                if book is not None:
                    book.load(await asyncio.to_thread(fetch_snapshot, rest_url, SYMBOL))
                while not stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(decode=False), 0.5)
                    except TimeoutError:
                        continue
                    now = time.time_ns()
                    totals["messages"] += 1
                    totals["bytes"] += len(raw)
                    # the stream's name is at a fixed place in the wrapper: no JSON parse on the hot path
                    if raw.startswith(TRADE_PREFIX):
                        tid = int(raw[raw.index(b'"t":') + 4 : raw.index(b',"p"')])
                        trade_arrivals[i].extend((tid, now))
                    else:
                        u = int(raw[raw.index(b'"u":') + 4 : raw.index(b',"b"')])
                        depth_arrivals[i].extend((u, now))
                        if book is not None:
                            event = json.loads(raw)["data"]
                            if book.apply(event):
                                totals["diff"] += len(raw)
                                full = {"lastUpdateId": book.update_id, "bids": list(book.bids.items()),
                                        "asks": list(book.asks.items())}  # fmt: skip
                                totals["full"] += len(json.dumps(full, separators=(",", ":")))
        except (ConnectionClosed, InvalidStatus, OSError):  # a client dropped or refused: counted, the run goes on
            totals["closed"] += 1

    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    pipe.send("connected")
    await asyncio.to_thread(pipe.recv)  # the run ended
    stop.set()
    await asyncio.gather(*tasks)
    trade_times, depth_times = pipe.recv()  # the engine's publish times (id -> ns)
    hist_t, hist_d = _histogram(), _histogram()
    for arrivals, published, hist in ((trade_arrivals, trade_times, hist_t), (depth_arrivals, depth_times, hist_d)):
        for pairs in arrivals:
            for k in range(0, len(pairs), 2):
                sent = published.get(pairs[k])
                if sent is not None:
                    hist.record_value(max(LOWEST, min(HIGHEST, (pairs[k + 1] - sent) // 1_000)))
    pipe.send(ClientResult(hist_t.encode(), hist_d.encode(), totals["messages"], totals["bytes"], totals["diff"],
                           totals["full"], totals["closed"]))  # fmt: skip


class _Sink(asyncio.Protocol):
    """A client that reads everything and parses nothing: the feed's work per connection is the same as for a full
    client, at a fraction of the reading cost on this shared machine."""

    def __init__(self, totals: dict[str, int]) -> None:
        self.totals = totals
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.totals["bytes"] += len(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.totals["closed"] += 1
        if not self.closed.done():
            self.closed.set_result(None)


async def _sinks(ws_url: str, count: int, depth: str, pipe: Connection) -> None:
    host, port = ws_url.removeprefix("ws://").split(":")
    totals = {"bytes": 0, "closed": 0}
    request = (f"GET /stream?streams={SYMBOL.lower()}@trade/{SYMBOL.lower()}@{depth} HTTP/1.1\r\nHost: {host}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: bWVyY3VyeS1iZW5jaC0wMQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()  # fmt: skip
    transports = []
    for _ in range(count):
        transport, _protocol = await asyncio.get_running_loop().create_connection(
            lambda: _Sink(totals), host, int(port)
        )
        transport.write(request)
        transports.append(transport)
    pipe.send("connected")
    await asyncio.to_thread(pipe.recv)
    dropped = totals["closed"]  # before the run ends, only the feed closes a connection
    for transport in transports:
        transport.abort()
    pipe.send((totals["bytes"], dropped))


def _sink_process(ws_url: str, count: int, depth: str, pipe: Connection) -> None:
    uvloop.run(_sinks(ws_url, count, depth, pipe))


def _client_process(ws_url: str, rest_url: str, count: int, depth: str, measure_book: bool, pipe: Connection) -> None:
    uvloop.run(_clients(ws_url, rest_url, count, depth, measure_book, pipe))


# the run ---------------------------------------------------------------------------------------------------------


class Publishes:
    """When the engine published each trade and each book update of the symbol, seen from a ZMQ subscriber."""

    def __init__(self, endpoint: str) -> None:
        self.trades: dict[int, int] = {}
        self.updates: dict[int, int] = {}
        self.stop = threading.Event()
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, 0)
        self.sub.connect(endpoint)
        self.sub.subscribe(ALL_TOPIC)
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            if not self.sub.poll(50):
                continue
            _, blob = self.sub.recv_multipart()
            now = time.time_ns()
            for ev in decode_events(blob):
                if type(ev) is TradeExecuted and ev.symbol == SYMBOL:
                    self.trades[ev.trade_id] = now
                elif type(ev) is BookDelta and ev.symbol == SYMBOL:
                    self.updates[ev.update_id] = now

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sub.close(0)
        self.ctx.term()


@dataclass
class Run:
    depth: str
    clients: int
    rate: float  # commands/s offered
    seconds: float
    trades: HdrHistogram
    depth_hist: HdrHistogram
    messages: int
    bytes_in: int
    diff_bytes: int
    full_bytes: int
    disconnected: int
    feed_cpu: float  # % of one core
    trades_published: int
    updates_published: int


def _sent(port: int) -> int:
    """The feed's count of stream messages written to clients (its Prometheus counter)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("mercury_feed_messages_sent_total "):
                return int(float(line.split()[1]))
    return 0


def ladder(venue: Venue) -> None:
    """Resting orders of accounts 5 to 8 on LADDER levels a side, outside the flow's prices (accounts 1 to 4)."""
    c = venue.client("ladder")
    for i in range(LADDER):
        c.send(c.place(5 + i % 2, SYMBOL, Side.BUY, 10 + i % 7, MID - 60 - i))
        c.send(c.place(7 + i % 2, SYMBOL, Side.SELL, 10 + i % 7, MID + 60 + i))
    for _ in range(2 * LADDER):
        c.recv_ack()


def run_once(directory: Path, clients: int, rate: float, seconds: float, depth: str) -> Run:
    venue = Venue(directory)
    venue.start()
    service, rest, ws = feed_service(venue, "mongodb://127.0.0.1:9/none", "feed")
    metrics = free_port()
    service.env["MERCURY_METRICS_PORT"] = str(metrics)
    try:
        venue.fund(*range(1, 9), units=10**15)
        ladder(venue)
        flow = Flow(venue, seed=17, cancel_all_share=0.0)
        flow.step(500)
        service.start()
        probe_pipe, theirs = mp.Pipe()
        probes = mp.Process(target=_client_process, args=(ws, rest, PROBES, depth, True, theirs))
        sink_pipe, theirs = mp.Pipe()
        sinks = mp.Process(target=_sink_process, args=(ws, clients - PROBES, depth, theirs))
        for child, pipe in ((probes, probe_pipe), (sinks, sink_pipe)):
            child.start()
            assert pipe.recv() == "connected"
        time.sleep(2)  # let every connection open
        publishes = Publishes(venue.settings.events_pub_endpoint)
        assert service.proc is not None
        stat = f"/proc/{service.proc.pid}/stat"
        cpu0, t0, sent0 = _ticks(stat), time.monotonic(), _sent(metrics)
        per_tick = max(1, round(rate / 100))
        next_at = time.monotonic()
        while time.monotonic() - t0 < seconds:
            flow.step(per_tick)
            next_at += per_tick / rate
            time.sleep(max(0.0, next_at - time.monotonic()))
        time.sleep(1.5)  # the last messages arrive
        elapsed = time.monotonic() - t0
        cpu = (_ticks(stat) - cpu0) / CLK_TCK / elapsed * 100
        sent = _sent(metrics) - sent0
        publishes.close()
        probe_pipe.send("stop")
        sink_pipe.send("stop")
        probe_pipe.send((publishes.trades, publishes.updates))
        result: ClientResult = probe_pipe.recv()
        sink_bytes, sink_dropped = sink_pipe.recv()
        for child in (probes, sinks):
            child.join(30)
        return Run(depth, clients, rate, elapsed, HdrHistogram.decode(result.trades),
                   HdrHistogram.decode(result.depth), sent, result.bytes_in + sink_bytes, result.diff_bytes,
                   result.full_bytes, result.disconnected + sink_dropped, cpu,
                   len(publishes.trades), len(publishes.updates))  # fmt: skip
    finally:
        if service.alive():
            service.stop()
        venue.stop()


def _ms(h: HdrHistogram, q: float) -> str:
    return f"{h.get_value_at_percentile(q) / 1000:.1f}" if h.get_total_count() else "-"


def render(runs: Sequence[Run], argv: Sequence[str]) -> str:
    out = ["# Market-data feed: one process, many WebSocket clients", ""]
    out += ["Reproduce: `" + " ".join(["python -m bench.feeds", *argv]) + "`", "", machine_markdown(), ""]
    out += ["Everything runs on this machine at once: Redis, the sequencer, the engine (pinned to a core), the feed,",
            "the order flow and the client processes. Latency is from the engine publishing (seen by a ZMQ subscriber",
            "in the bench process) to a client process reading the message.", ""]  # fmt: skip
    out += ["| depth stream | clients | flow (cmd/s) | trade p50 / p99 / max (ms) | depth p50 / p99 / max (ms) "
            "| messages/s delivered | feed CPU | dropped |",
            "|---|---:|---:|---|---|---:|---:|---:|"]  # fmt: skip
    for r in runs:
        out.append(f"| `@{r.depth}` | {r.clients} | {r.rate:.0f} | {_ms(r.trades, 50)} / {_ms(r.trades, 99)} / "
                   f"{r.trades.get_max_value() / 1000:.1f} | {_ms(r.depth_hist, 50)} / {_ms(r.depth_hist, 99)} / "
                   f"{r.depth_hist.get_max_value() / 1000:.1f} | {r.messages / r.seconds:,.0f} | {r.feed_cpu:.0f}% "
                   f"| {r.disconnected} |")  # fmt: skip
    out += ["", "Bytes of the depth stream (one client's diffs) next to a full book snapshot per message:", ""]
    out += ["| depth stream | diff bytes | full-book bytes | saved |", "|---|---:|---:|---:|"]
    for r in runs:
        saved = 1 - r.diff_bytes / r.full_bytes if r.full_bytes else 0.0
        out.append(f"| `@{r.depth}` | {r.diff_bytes:,} | {r.full_bytes:,} | {saved:.1%} |")
    out += ["", "Engine output per run: " + "; ".join(
        f"`@{r.depth}`: {r.trades_published:,} trades, {r.updates_published:,} book updates in {r.seconds:.0f} s"
        for r in runs) + ".", ""]  # fmt: skip
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=500.0, help="commands/s of the order flow")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--depth", nargs="+", default=["depth@100ms", "depth@0ms"])
    args = parser.parse_args(argv)
    runs = []
    for depth in args.depth:
        with tempfile.TemporaryDirectory(prefix="mercury-bench-feeds-") as tmp:
            print(f"run: {args.clients} clients on @{depth}, flow {args.rate:.0f}/s for {args.seconds:.0f} s",
                  file=sys.stderr)  # fmt: skip
            runs.append(run_once(Path(tmp), args.clients, args.rate, args.seconds, depth))
    REPORT.write_text(render(runs, sys.argv[1:] if argv is None else list(argv)))
    print(REPORT.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
