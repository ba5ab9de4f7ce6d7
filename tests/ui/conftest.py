"""What the UI's browser tests share: Debian's chromium, the production build, and a real exchange (venue,
PostgreSQL persister, HTTP gateway serving the UI), a market-data feed and a random order flow on other accounts."""

from __future__ import annotations

import random
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.feeds.conftest import READY
from tests.gateways.conftest import answers_ping, running_exchange
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
            wait_for(lambda: answers_ping(ex.url), 15, "the gateway to answer again")

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


def run_script(script: str, env: dict[str, str], requests: Mapping[str, Callable[[], None]], failure: Path,
               timeout: float = 60) -> str:  # fmt: skip
    """Run the browser script ``ui/e2e/<script>`` and return its output; it asks the runner for a step of its own
    with a line ``@@<request>`` (restart the feed, train a model, ...), which is done and answered "ok" on its stdin.
    Fails with the output when the script fails or does not report that the page logged no console error."""
    lines: list[str] = []
    with subprocess.Popen(["node", f"e2e/{script}"], cwd=UI, env={**env, "FAILURE_SCREENSHOT": str(failure)},
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        try:
            for line in proc.stdout:
                lines.append(line)
                request = line.strip()
                if request.startswith("@@"):
                    requests[request[2:]]()
                    proc.stdin.write("ok\n")
                    proc.stdin.flush()
            code = proc.wait(timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
    output = "".join(lines)
    print(output)
    assert code == 0, f"the browser test failed (screen: {failure}):\n{output}"
    assert "PASS: no console errors" in output, output
    return output
