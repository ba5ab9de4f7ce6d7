"""``python -m tests.venue.probe``: what a new user of ``./mercury start`` would check, through the front door.

It runs inside the started venue's network namespace (tests/venue/test_start.py enters it with nsenter), so the
venue's fixed ports (8080, 6543, 27018, ...) are its own and a developer's running venue is not disturbed. It
prints one JSON object with what it saw; the test asserts on it. Nothing here decides a verdict except a plain
failure to reach a part, which raises.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import re
import sys
import time
import urllib.error
import urllib.request
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import pymongo
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from wire.config import load_settings

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"


def metrics_ports() -> dict[str, int]:
    """The Procfile's processes that export Prometheus metrics, and the port each one's MERCURY_METRICS_PORT gives."""
    ports = {}
    for line in PROCFILE.read_text().splitlines():
        name, _, command = line.partition(":")
        found = re.search(r"\bMERCURY_METRICS_PORT=(\d+)", command)
        if found:
            ports[name.strip()] = int(found.group(1))
    return ports


def scrape() -> dict[str, dict[str, float]]:
    """Every exporting process's /metrics: process -> "name{label=value,...}" -> value (all samples, as parsed)."""
    seen: dict[str, dict[str, float]] = {}
    for name, port in metrics_ports().items():
        status, body, kind = fetch(f"http://127.0.0.1:{port}/metrics")
        if status != 200 or not kind.startswith("text/plain"):
            raise RuntimeError(f"{name}: GET /metrics on port {port} answered {status} {kind}")
        samples = seen[name] = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
    return seen


def fetch(url: str, data: bytes | None = None, method: str = "GET",
          headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:  # fmt: skip
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def get_json(url: str) -> Any:
    status, body, _ = fetch(url)
    if status != 200:
        raise RuntimeError(f"GET {url}: {status} {body[:500]!r}")
    return json.loads(body)


def signed(base: str, method: str, path: str, params: dict[str, str], key: str, secret: str) -> tuple[int, Any]:
    payload = urlencode({**params, "timestamp": time.time_ns() // 1_000_000})
    payload += "&signature=" + hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    headers = {"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"}
    if method in ("GET", "DELETE"):
        status, body, _ = fetch(f"{base}{path}?{payload}", method=method, headers=headers)
    else:
        status, body, _ = fetch(base + path, data=payload.encode(), method=method, headers=headers)
    return status, json.loads(body)


def ui(base: str) -> dict[str, Any]:
    """The UI's page and the scripts it loads, as a browser would fetch them."""
    status, page, kind = fetch(base + "/ui/")
    scripts = re.findall(r'src="([^"]+\.js)"', page.decode())
    loaded = [fetch(base + s if s.startswith("/") else f"{base}/ui/{s}")[0] for s in scripts]
    config_status, config, _ = fetch(base + "/ui-config.json")
    return {"status": status, "type": kind, "scripts": loaded, "config_status": config_status,
            "config": json.loads(config) if config_status == 200 else None}  # fmt: skip


def stream_trade(base: str, symbol: str, timeout: float) -> dict[str, Any] | None:
    """The first trade of ``symbol`` on the market-data stream behind the front door (the simulator trades)."""
    ws = base.replace("http://", "ws://")
    with connect(f"{ws}/ws/{symbol.lower()}@trade", open_timeout=10) as socket:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            except TimeoutError:
                break
            if message.get("e") == "trade":
                return dict(message)
    return None


def prometheus(base: str) -> dict[str, Any]:
    """What the local Prometheus, through the front door, says of each process it scrapes: process -> up (1/0)."""
    status, body, _ = fetch(base + "/prometheus/api/v1/query?query=up")
    if status != 200:
        return {"status": status, "up": {}}
    results = json.loads(body)["data"]["result"]
    up = {r["metric"].get("process", r["metric"]["job"]): float(r["value"][1]) for r in results}
    return {"status": status, "up": up}


async def postgres(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        trades = await conn.fetchval("SELECT count(*) FROM trades")
        orders = await conn.fetchval("SELECT count(*) FROM orders")
        accounts = await conn.fetchval("SELECT count(*) FROM accounts")
        max_out = await conn.fetchval("SELECT coalesce(max(out_seq), 0) FROM trades")
        duplicate = await conn.fetchval("SELECT count(*) - count(DISTINCT out_seq) FROM trades")
    finally:
        await conn.close()
    return {"trades": trades, "orders": orders, "accounts": accounts, "max_trade_out_seq": max_out,
            "duplicate_trade_out_seq": duplicate}  # fmt: skip


def mongo(url: str) -> dict[str, int]:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(url, serverSelectionTimeoutMS=10_000)
    with client:
        db = client.get_default_database()
        return {"klines": db.klines.count_documents({}), "ticks": db.ticks.count_documents({})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--place", action="store_true", help="rest a demo order far from the market")
    parser.add_argument("--order", type=int, default=0, help="an orderId to look up")
    args = parser.parse_args(argv)
    settings = load_settings()
    base = args.url
    seen: dict[str, Any] = {"ui": ui(base)}
    seen["ping"] = fetch(base + "/api/v3/ping")[0]
    info = get_json(base + "/api/v3/exchangeInfo")
    seen["symbols"] = sorted(s["symbol"] for s in info["symbols"])
    seen["depth_status"], depth, _ = fetch(f"{base}/api/v3/depth?symbol={args.symbol}&limit=5")
    seen["depth"] = json.loads(depth)
    seen["account_status"], account = signed(base, "GET", "/api/v3/account", {}, args.key, args.secret)
    seen["balances"] = {b["asset"]: b for b in account.get("balances", [])}
    seen["trade"] = stream_trade(base, args.symbol, 30)
    if args.place and seen["trade"] is not None:
        # 15% under the last trade: inside the venue's price band (20%), far enough under the simulated market to
        # rest, and it must still be there after a restart
        price = (Decimal(seen["trade"]["p"]) * Decimal("0.85")).quantize(Decimal("0.01"), ROUND_DOWN)
        quantity = (Decimal(20) / price).quantize(Decimal("0.00001"), ROUND_UP)  # 20 USDT: above min notional
        order = {"symbol": args.symbol, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                 "quantity": str(quantity), "price": str(price), "newOrderRespType": "RESULT"}  # fmt: skip
        seen["placed_status"], seen["placed"] = signed(base, "POST", "/api/v3/order", order, args.key, args.secret)
    if args.order:
        query = {"symbol": args.symbol, "orderId": str(args.order)}
        seen["order_status"], seen["order"] = signed(base, "GET", "/api/v3/order", query, args.key, args.secret)
    seen["metrics"] = scrape()
    seen["prometheus"] = prometheus(base)
    seen["postgres"] = asyncio.run(postgres(settings.postgres_url))
    seen["mongo"] = mongo(settings.mongodb_url)
    json.dump(seen, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
