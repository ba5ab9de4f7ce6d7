"""The load's order flow: deterministic command frames (passive limits, cancels, IOC takers) for one load process."""

from __future__ import annotations

import random
from collections import Counter

from bench.pipeline.constants import ACCOUNTS_PER_WORKER, MID, RESTING_PER_WORKER, SEED, SYMBOL
from wire.codec import encode
from wire.commands import CancelOrder, PlaceOrder
from wire.enums import OrderType, Side, TimeInForce


def first_account(worker: int) -> int:
    return 1 + worker * 100_000


def funded_accounts(workers: int) -> list[int]:
    """Every account the load processes trade from (the limits and sample flows, workers 97-99, only encode)."""
    return [first_account(w) + i for w in range(workers) for i in range(ACCOUNTS_PER_WORKER)]


class OrderFlow:
    """Deterministic command frames for one load process: passive limits, cancels of its own orders, IOC takers.

    Cancels name orders by client order id, so the flow needs no feedback from the engine; a cancel of an order
    that a taker has filled meanwhile is answered CancelRejected, as it would be for a real client.
    """

    def __init__(self, worker: int, src: str) -> None:
        self.rng = random.Random(SEED + worker)
        self.src = src
        self.req = 0
        self.oids = 0
        self.tag = f"w{worker}-"
        self.first_account = first_account(worker)
        self.open: list[tuple[int, str]] = []  # (account, client_oid) of orders believed resting
        self.kinds: Counter[str] = Counter()

    def _qty(self) -> int:
        # median ~0.002 BTC (200 USDT), a long tail; at least 10 lots = 10 USDT (min notional is 5)
        return max(10, min(200_000, int(self.rng.lognormvariate(5.3, 1.0))))

    def _account(self) -> int:
        return self.first_account + self.rng.randrange(ACCOUNTS_PER_WORKER)

    def _place(self, side: Side, tif: TimeInForce, price: int) -> bytes:
        self.req += 1
        self.oids += 1
        oid = self.tag + format(self.oids, "x")
        account = self._account()
        if tif is TimeInForce.GTC:
            self.open.append((account, oid))
        cmd = PlaceOrder(self.src, self.req, account, SYMBOL, side, OrderType.LIMIT, tif, price, self._qty(), oid)
        return encode(cmd)

    def next_frame(self) -> bytes:
        rng, open_orders = self.rng, self.open
        r = rng.random()
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        if r < 0.10:  # a taker: LIMIT IOC 1..4 ticks through the mid, so it meets the touch and a level or two
            self.kinds["limit_ioc"] += 1
            through = 1 + rng.randrange(4)
            return self._place(side, TimeInForce.IOC, MID + through if side is Side.BUY else MID - through)
        shift = 0.45 * (RESTING_PER_WORKER - len(open_orders)) / RESTING_PER_WORKER
        p_limit = 0.45 + max(-0.1, min(0.1, shift))
        if r < 0.10 + p_limit or not open_orders:
            self.kinds["limit"] += 1
            depth = min(int(rng.expovariate(0.25)), 50)  # mostly within a few ticks of the touch
            return self._place(side, TimeInForce.GTC, MID - 1 - depth if side is Side.BUY else MID + 1 + depth)
        self.kinds["cancel"] += 1
        i = rng.randrange(len(open_orders))
        account, oid = open_orders[i]
        open_orders[i] = open_orders[-1]
        open_orders.pop()
        self.req += 1
        return encode(CancelOrder(self.src, self.req, account, SYMBOL, 0, oid))

    def frames(self, n: int) -> tuple[int, list[bytes]]:
        """The next ``n`` frames and the request id of the first (request ids are consecutive)."""
        first = self.req + 1
        return first, [self.next_frame() for _ in range(n)]
