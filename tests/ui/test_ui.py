"""The trading UI end to end: its production build in Debian's headless Chromium, driven by Playwright
(ui/e2e/run.mjs), against a real exchange (venue, PostgreSQL persister, HTTP gateway), a market-data feed and a
random order flow on other accounts. The script loads the market view and waits for the book and candles to move,
is refused with a wrong key, signs in, places a limit order and sees it in open orders and the book, cancels it,
cancels all, places a marketable order and sees the fill and the new balances, reconnects after the feed and then
the gateway restart, and fails on any console error.
Its screenshots go to the test's directory, or to docs/screenshots/ with MERCURY_UI_SCREENSHOTS=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.ui.conftest import SCREENSHOTS, UiExchange, build_ui, chromium, run_script


@pytest.mark.timeout(400)
def test_ui_end_to_end(ui_exchange: UiExchange, tmp_path: Path) -> None:
    ex = ui_exchange
    build_ui()
    env = dict(os.environ, UI_URL=ex.url, API_KEY=ex.key, API_SECRET=ex.secret, CHROMIUM=chromium(),
               SCREENSHOTS=str(SCREENSHOTS if os.environ.get("MERCURY_UI_SCREENSHOTS") else tmp_path),
               RESTART_FEED="1", RESTART_GATEWAY="1")  # fmt: skip
    requests = {"restart-feed": ex.restart_feed, "restart-gateway": ex.restart_gateway}
    run_script("run.mjs", env, requests, tmp_path / "failure.png")
