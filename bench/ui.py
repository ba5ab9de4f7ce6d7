"""The trading UI under a fast market: how long a WebSocket message takes to reach the screen.

A stand-in feed (this process: a websockets server that also answers the few REST calls the UI makes and serves
ui/dist) streams BTCUSDT at a fixed rate, half depth diffs (contiguous update ids, each with the feed's CRC32
checksum computed by the reference client's LocalBook) and half trades, over a 400-level book. Debian's headless
Chromium (ui/bench/measure.mjs, Playwright) opens the production build with ``?perf=1``; the page's probes
(ui/src/lib/perf.ts) record when each message arrived, when the book or trades it changed were committed to the
DOM, and the next animation frame after that commit (an upper bound of when it was painted), plus every frame's
time for the frames dropped. The report also gives the production bundle's gzipped size.

    python -m bench.ui [--rate 200] [--seconds 20] [--runs 3]     # writes bench/reports/ui.md
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import http
import itertools
import json
import mimetypes
import os
import random
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from bench.machine import machine_markdown
from client.marketbook import LocalBook
from tests.harness import free_port

REPO = Path(__file__).resolve().parent.parent
UI = REPO / "ui"
DIST = UI / "dist"
REPORT = REPO / "bench" / "reports" / "ui.md"
LEVELS = 400
FRAME_MS = 1000 / 60

EXCHANGE_INFO = {
    "serverTime": 0,
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "baseAsset": "BTC",
            "quoteAsset": "USDT",
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "10000000.00", "tickSize": "0.01"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.00000", "stepSize": "0.00001"},
                {"filterType": "NOTIONAL", "minNotional": "5.00"},
            ],
        }
    ],
}


def price(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}"


def qty(lots: int) -> str:
    return f"{lots // 100_000}.{lots % 100_000:05d}"


class Market:
    """A book around 50,000.00 that changes a few levels per diff, and trades; thread-safe for the REST side."""

    def __init__(self, seed: int = 1) -> None:
        self.rnd = random.Random(seed)
        self.lock = threading.Lock()
        self.book = LocalBook("BTCUSDT")
        mid = 5_000_000
        self.book.load(
            {
                "lastUpdateId": 1,
                "bids": [[price(mid - 1 - i), qty(self.rnd.randint(1, 5000))] for i in range(LEVELS)],
                "asks": [[price(mid + 1 + i), qty(self.rnd.randint(1, 5000))] for i in range(LEVELS)],
            }
        )
        self.mid = mid
        self.trade_id = 0

    def diff(self) -> dict[str, Any]:
        rnd = self.rnd
        with self.lock:
            first = self.book.update_id + 1
            changes: dict[str, list[list[str]]] = {"b": [], "a": []}
            n = rnd.randint(1, 4)
            for _ in range(n):
                side = rnd.choice("ba")
                offset = rnd.randint(1, 60)
                ticks = self.mid - offset if side == "b" else self.mid + offset
                lots = 0 if rnd.random() < 0.2 else rnd.randint(1, 5000)
                changes[side].append([price(ticks), qty(lots)])
            event = {"e": "depthUpdate", "E": int(time.time() * 1000), "s": "BTCUSDT", "U": first,
                     "u": first + n - 1, **changes}  # fmt: skip
            self.book.apply(event)
            event["cs"] = self.book.checksum()
            return event

    def trade(self) -> dict[str, Any]:
        self.trade_id += 1
        ticks = self.mid + self.rnd.randint(-5, 5)
        now = int(time.time() * 1000)
        return {"e": "trade", "E": now, "s": "BTCUSDT", "t": self.trade_id, "p": price(ticks),
                "q": qty(self.rnd.randint(1, 3000)), "T": now, "m": self.rnd.random() < 0.5}  # fmt: skip

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            bids, asks = self.book.top(5000)
            return {"lastUpdateId": self.book.update_id, "bids": bids, "asks": asks}


def klines() -> list[list[Any]]:
    now = int(time.time()) * 1000
    out = []
    close = 50_000.0
    for i in range(300, 0, -1):
        o = close
        close = o + random.uniform(-5, 5)
        out.append([now - i * 60_000, f"{o:.2f}", f"{max(o, close) + 2:.2f}", f"{min(o, close) - 2:.2f}",
                    f"{close:.2f}", "1.00000"])  # fmt: skip
    return out


def respond(status: int, body: bytes, content_type: str) -> Response:
    headers = Headers({"Content-Type": content_type, "Content-Length": str(len(body)), "Cache-Control": "no-store"})
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def http_handler(market: Market) -> Any:
    def handle(connection: ServerConnection, request: Request) -> Response | None:
        path, _, _ = request.path.partition("?")
        if path.startswith("/stream"):
            return None  # the WebSocket
        if path == "/api/v3/exchangeInfo":
            return respond(200, json.dumps(EXCHANGE_INFO).encode(), "application/json")
        if path == "/api/v3/depth":
            return respond(200, json.dumps(market.snapshot()).encode(), "application/json")
        if path == "/api/v3/klines":
            return respond(200, json.dumps(klines()).encode(), "application/json")
        if path == "/api/v3/trades":
            return respond(200, b"[]", "application/json")
        if path == "/api/v3/ticker/24hr":
            ticker = {"lastPrice": "50000.00", "priceChangePercent": "0.00", "highPrice": "50100.00",
                      "lowPrice": "49900.00", "volume": "12.00000", "quoteVolume": "600000.00"}  # fmt: skip
            return respond(200, json.dumps(ticker).encode(), "application/json")
        if path.startswith("/ui/"):
            file = (DIST / (path[len("/ui/") :] or "index.html")).resolve()
            if file.is_file() and DIST in file.parents:
                kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                return respond(200, file.read_bytes(), kind)
        return respond(404, b'{"code":-1000,"msg":"Unknown endpoint."}', "application/json")

    return handle


async def stream(market: Market, ws: ServerConnection, rate: float, sent: list[int]) -> None:
    """Messages at ``rate`` a second on a fixed schedule (no drift), alternating depth diffs and trades."""
    start = time.perf_counter()
    i = 0
    try:
        while True:
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if i % 2 == 0:
                msg = {"stream": "btcusdt@depth@100ms", "data": market.diff()}
            else:
                msg = {"stream": "btcusdt@trade", "data": market.trade()}
            await ws.send(json.dumps(msg))
            sent[0] += 1
            i += 1
    except Exception:
        return


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def build_ui() -> None:
    npm = shutil.which("npm")
    assert npm, "npm is not installed"
    if not (UI / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=UI, check=True)
    subprocess.run([npm, "run", "build"], cwd=UI, check=True, capture_output=True)


def bundle_sizes() -> list[tuple[str, int, int]]:
    out = []
    for file in sorted((DIST / "assets").iterdir()):
        data = file.read_bytes()
        out.append((file.name, len(data), len(gzip.compress(data, 9))))
    return out


async def run(rate: float, seconds: float) -> dict[str, Any]:
    market = Market()
    port = free_port()
    sent = [0]

    async def on_ws(ws: ServerConnection) -> None:
        await stream(market, ws, rate, sent)

    async with serve(on_ws, "127.0.0.1", port, process_request=http_handler(market), max_size=None):
        base = f"http://127.0.0.1:{port}"
        page = f"{base}/ui/?perf=1&marketRest={base}&marketWs=ws://127.0.0.1:{port}"
        chromium = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
        env = {"PAGE_URL": page, "CHROMIUM": chromium, "DURATION": str(seconds), "PATH": "/usr/bin:/bin"}
        proc = await asyncio.create_subprocess_exec("node", "bench/measure.mjs", cwd=UI, env=env,
                                                    stdout=asyncio.subprocess.PIPE)  # fmt: skip
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
        result: dict[str, Any] = json.loads(out)
        result["sent"] = sent[0]
        return result


def summarize(result: dict[str, Any], rate: float, seconds: float) -> dict[str, Any]:
    samples = result["samples"]
    rows = {}
    for kind in ("book", "trade"):
        mine = [s for s in samples if s["kind"] == kind]
        committed = [s["committed"] - s["arrived"] for s in mine]
        painted = [s["painted"] - s["arrived"] for s in mine]
        rows[kind] = {
            "n": len(mine),
            "commit": (percentile(committed, 50), percentile(committed, 99), max(committed, default=float("nan"))),
            "paint": (percentile(painted, 50), percentile(painted, 99), max(painted, default=float("nan"))),
        }
    frames = result["frames"]
    gaps = [b - a for a, b in itertools.pairwise(frames)]
    dropped = sum(max(0, round(g / FRAME_MS) - 1) for g in gaps)
    return {
        "rows": rows,
        "frames": len(frames),
        "fps": len(frames) / seconds,
        "dropped": dropped,
        "longest": max(gaps, default=float("nan")),
        "median_frame": statistics.median(gaps) if gaps else float("nan"),
        "received": sum(r["n"] for r in rows.values()),
        "errors": result["errors"],
        "resyncs": result["resyncs"],
    }


def report(runs: list[dict[str, Any]], rate: float, seconds: float, sizes: list[tuple[str, int, int]]) -> str:
    lines = [
        "# Trading UI: from a WebSocket message to the screen",
        "",
        f"Reproduce: `python -m bench.ui --rate {rate:g} --seconds {seconds:g} --runs {len(runs)}` (builds ui/dist "
        "first)",
        "",
        machine_markdown(),
        "",
        f"Debian's headless Chromium at 1280x800 ({shutil.which('chromium') or 'chromium'}), the production build "
        f"with `?perf=1`. The stand-in feed (this process) sends {rate:g} messages/s for {seconds:g} s per run "
        "(after 3 s of warm-up): depth diffs and trades alternately over a 400-level book, each diff with the book "
        "checksum the UI verifies. Times are measured in the page from the WebSocket `message` event: *DOM* is "
        "when React committed the book / trades that include it (the UI publishes market data once per animation "
        "frame, inside the frame callback), *screen* is the first task after the frame that rendered that commit "
        "(a MessageChannel message posted in the frame callback runs once the frame is rendered). Everything (the "
        "stand-in feed, node, Chromium's processes) shares the machine's cores, so runs differ: each is listed.",
        "",
        "| run | stream | messages | DOM p50 / p99 / max (ms) | screen p50 / p99 / max (ms) |",
        "|---:|---|---:|---|---|",
    ]
    for i, s in enumerate(runs, 1):
        for kind, label in (("book", "book (depth diffs)"), ("trade", "trades")):
            r = s["rows"][kind]
            c, p = r["commit"], r["paint"]
            dom = f"{c[0]:.1f} / {c[1]:.1f} / {c[2]:.1f}"
            screen = f"{p[0]:.1f} / {p[1]:.1f} / {p[2]:.1f}"
            lines.append(f"| {i} | {label} | {r['n']} | {dom} | {screen} |")
    lines += [
        "",
        "| run | frames | frames/s | median frame (ms) | frames dropped | longest frame (ms) | book resyncs | "
        "console errors | machine load before / after |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for i, s in enumerate(runs, 1):
        load = f"{s['load'][0]:.2f} / {s['load'][1]:.2f}"
        frames = f"{s['frames']} | {s['fps']:.1f} | {s['median_frame']:.1f} | **{s['dropped']}** | {s['longest']:.1f}"
        lines.append(f"| {i} | {frames} | {s['resyncs']} | {len(s['errors'])} | {load} |")
    lines += [
        "",
        "Frames dropped: each gap between animation frames longer than one 60 Hz frame counts its extra whole frames. "
        "Machine load: the 1-minute load average (other work on the machine, such as a test suite, competes with "
        "the browser for the cores).",
        "",
        "Production bundle (ui/dist/assets, gzip -9; the depth chart's chunk, ECharts, loads after the first paint):",
        "",
        "| file | bytes | gzipped |",
        "|---|---:|---:|",
    ]
    for name, raw, gz in sizes:
        lines.append(f"| {name} | {raw:,} | {gz:,} |")
    total_raw = sum(r for _, r, _ in sizes)
    total_gz = sum(g for _, _, g in sizes)
    lines += [f"| **total** | {total_raw:,} | **{total_gz:,}** |", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200, help="messages a second (default 200)")
    parser.add_argument("--seconds", type=float, default=20, help="measured time per run (default 20)")
    parser.add_argument("--runs", type=int, default=3, help="runs, each in a new browser (default 3)")
    parser.add_argument("--no-write", action="store_true", help="print the report instead of writing it")
    args = parser.parse_args()
    build_ui()
    runs = []
    for _ in range(args.runs):
        load = os.getloadavg()[0]
        summary = summarize(asyncio.run(run(args.rate, args.seconds)), args.rate, args.seconds)
        summary["load"] = (load, os.getloadavg()[0])
        runs.append(summary)
    text = report(runs, args.rate, args.seconds, bundle_sizes())
    print(text)
    if not args.no_write:
        REPORT.write_text(text)
        print(f"written to {REPORT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
