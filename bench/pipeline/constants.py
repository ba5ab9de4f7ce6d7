"""Constants shared by the pipeline benchmark's modules: paths, the market, the load's shape, the verdict."""

from __future__ import annotations

from pathlib import Path

from wire.enums import AckStatus

REPO = Path(__file__).resolve().parent.parent.parent
REPORTS = REPO / "bench" / "reports"
SYMBOL = "BTCUSDT"
MID = 10_000_000  # ticks of 0.01 USDT: 100,000.00 USDT
SEED = 20_260_101
RESTING_PER_WORKER = 1_500  # open orders each load process keeps on the book (it cancels to stay near this)
ACCOUNTS_PER_WORKER = 5_000
TICK_S = 0.1  # sampling period of the backlogs
SETTLE_S = 1.0  # each throughput step is judged after its first second
BACKLOGGED = 0.25  # a sustained step may have a backlog over 50 ms of load during at most this share of its window
JOURNALED = AckStatus.JOURNALED
