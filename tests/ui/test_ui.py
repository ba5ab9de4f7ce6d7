"""The trading UI end to end: its production build in Debian's headless Chromium, driven by Playwright
(ui/e2e/run.mjs), against a real exchange (venue, PostgreSQL persister, HTTP gateway), a market-data feed and a
random order flow on other accounts. The script loads the market view and waits for the book and candles to move,
is refused with a wrong key, signs in, places a limit order and sees it in open orders and the book, cancels it,
cancels all, places a marketable order and sees the fill and the new balances, reconnects after the feed and then
the gateway restart, and fails on any console error.
Its screenshots go to the test's directory, or to docs/screenshots/ with MERCURY_UI_SCREENSHOTS=1."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.feeds.conftest import READY
from tests.gateways.conftest import _up, running_exchange
from tests.harness import PostgresServer, Service, Venue, free_port, wait_for
from wire.commands import Command
from wire.enums import OrderType, Side, TimeInForce

REPO = Path(__file__).resolve().parents[2]
UI = REPO / "ui"
# the README's screenshots are refreshed only when asked (MERCURY_UI_SCREENSHOTS=1): a test run leaves the tree clean
SCREENSHOTS = REPO / "docs" / "screenshots"
FLOW_ACCOUNTS = (4, 5)  # the UI trades as account 1; the flow never touches its orders
MID = 5_000_000  # BTCUSDT ticks: 50,000.00


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")


def build_ui() -> None:
    """npm ci when node_modules is missing, and the production build when ui/dist is older than a source."""
    npm = shutil.which("npm")
    assert npm, "npm is not installed (apt-get install nodejs npm)"
    if not (UI / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=UI, check=True)
    index = UI / "dist" / "index.html"
    sources = [*(UI / "src").rglob("*"), UI / "index.html", UI / "vite.config.ts", UI / "package-lock.json"]
    if not index.exists() or max(p.stat().st_mtime for p in sources) > index.stat().st_mtime:
        subprocess.run([npm, "run", "build"], cwd=UI, check=True)


class Flow(threading.Thread):
    """Limit orders around a drifting mid on BTCUSDT and ETHUSDT, cancels and small market orders, a few batches a
    second: the book, trades and candles keep moving while the browser looks."""

    def __init__(self, venue: Venue) -> None:
        super().__init__(daemon=True)
        self.client = venue.client("ui-flow")
        self.rnd = random.Random(11)
        self.mid = {"BTCUSDT": MID, "ETHUSDT": 300_000}
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def batch(self, n: int) -> None:
        c, rnd = self.client, self.rnd
        cmds: list[Command] = []
        for _ in range(n):
            symbol = rnd.choice(("BTCUSDT", "BTCUSDT", "ETHUSDT"))
            account = rnd.choice(FLOW_ACCOUNTS)
            side = rnd.choice((Side.BUY, Side.SELL))
            self.mid[symbol] += rnd.randint(-3, 3)
            roll = rnd.random()
            if roll < 0.12:
                cmds.append(c.place(account, symbol, side, rnd.randint(1, 30), type=OrderType.MARKET,
                                    tif=TimeInForce.IOC))  # fmt: skip
            elif roll < 0.15:
                cmds.append(c.cancel_all(account, symbol))
            else:
                offset = rnd.randint(1, 40)
                price = self.mid[symbol] - offset if side is Side.BUY else self.mid[symbol] + offset
                cmds.append(c.place(account, symbol, side, rnd.randint(1, 60), price))
        for cmd in cmds:
            c.send(cmd)
        for _ in cmds:
            c.recv_ack()

    def run(self) -> None:
        try:
            while not self.stop_event.wait(0.1):
                self.batch(10)
        except BaseException as e:  # reported by the test
            self.error = e


@dataclass
class UiExchange:
    url: str  # the gateway, which serves the UI
    key: str  # account 1's API key and secret
    secret: str
    restart_feed: Callable[[], None]  # stop the feed and start a new one on the same ports
    restart_gateway: Callable[[], None]


@pytest.fixture
def ui_exchange(tmp_path: Path, postgres_server: PostgresServer, mongo_url: str) -> Iterator[UiExchange]:
    """Account 1's gateway URL and key, with a feed the gateway's /ui-config.json points at and a flow running."""
    rest_port, ws_port = free_port(), free_port()
    ports = {"MERCURY_FEED_REST_PORT": str(rest_port), "MERCURY_FEED_WS_PORT": str(ws_port)}
    with running_exchange(tmp_path, postgres_server, gateway_env=ports) as ex:
        venue = ex.venue
        venue.fund(*FLOW_ACCOUNTS)
        mongo = Service("persistence.mongo", dict(venue.env, MERCURY_MONGODB_URL=mongo_url),
                        tmp_path / "mongo-persister.log", "mongo persister at out_seq")  # fmt: skip
        feed = Service("feeds", dict(venue.env, MERCURY_MONGODB_URL=mongo_url, **ports), tmp_path / "feed.log", READY)
        mongo.start()
        feed.start()
        flow = Flow(venue)
        flow.batch(200)  # a book to look at from the first frame
        flow.start()
        feeds = [feed]

        def restart_feed() -> None:
            feeds[-1].stop()
            again = Service("feeds", dict(venue.env, MERCURY_MONGODB_URL=mongo_url, **ports),
                            tmp_path / f"feed-{len(feeds)}.log", READY)  # fmt: skip
            feeds.append(again)
            again.start()

        def restart_gateway() -> None:
            ex.gateway.stop()
            ex.gateway.start()
            wait_for(lambda: _up(ex.url), 15, "the gateway to answer again")

        try:
            key, secret = ex.keys[1]
            yield UiExchange(ex.url, key, secret, restart_feed, restart_gateway)
        finally:
            flow.stop_event.set()
            flow.join(5)
            for service in (feeds[-1], mongo):
                if service.alive():
                    service.stop()
            assert flow.error is None, f"the order flow failed: {flow.error!r}"


@pytest.mark.timeout(400)
def test_ui_end_to_end(ui_exchange: UiExchange, tmp_path: Path) -> None:
    ex = ui_exchange
    build_ui()
    env = dict(os.environ, UI_URL=ex.url, API_KEY=ex.key, API_SECRET=ex.secret, CHROMIUM=chromium(),
               SCREENSHOTS=str(SCREENSHOTS if os.environ.get("MERCURY_UI_SCREENSHOTS") else tmp_path),
               RESTART_FEED="1", RESTART_GATEWAY="1")  # fmt: skip
    env["FAILURE_SCREENSHOT"] = str(tmp_path / "failure.png")
    lines: list[str] = []
    with subprocess.Popen(["node", "e2e/run.mjs"], cwd=UI, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        try:
            for line in proc.stdout:  # the script's steps; it asks for the feed's restart with a line of its own
                lines.append(line)
                request = line.strip()
                if request in ("@@restart-feed", "@@restart-gateway"):
                    (ex.restart_feed if request == "@@restart-feed" else ex.restart_gateway)()
                    proc.stdin.write("ok\n")
                    proc.stdin.flush()
            code = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
    output = "".join(lines)
    print(output)
    assert code == 0, f"the browser test failed (screen: {tmp_path / 'failure.png'}):\n{output}"
    assert "PASS: no console errors" in output, output
