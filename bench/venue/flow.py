"""What the load sends: signed Binance requests (new orders and cancels) as ready HTTP/1.1 bytes.

The mix, on one symbol around a fixed mid: passive LIMIT GTC orders a few ticks from the mid (most within 4), IOC
takers that cross the mid by 1 to 4 ticks and so trade with those, and cancels. New orders ask for the ACK answer
(``newOrderRespType=ACK``: sent once the order is journaled, with its orderId, the command's in_seq), so the client
sees the journaled acknowledgement; a cancel's answer waits for the engine's result.

A cancel only ever names an order that rests DEEP ticks or more from the mid, beyond the takers' reach, so that on a
private venue it cannot race a fill: every cancel is expected to succeed. On a shared venue other traders may fill
such an order first; the load then checks each cancel refused with -2011 against PostgreSQL (bench.load).

Each request is signed as Binance clients sign (HMAC-SHA256 over the exact parameters), with a fresh timestamp and
a unique newClientOrderId, so no two requests share a signature (the gateways refuse a replayed signature).
"""

from __future__ import annotations

import hashlib
import hmac
import random
from decimal import Decimal

from bench.venue.accounts import Trader

NEW, CANCEL, BAD = 0, 1, 2  # request kinds
DEEP = 5  # ticks from the mid: the takers (at most 4 ticks through) never reach an order this far out
TAKER_SHARE = 0.10
CANCEL_SHARE = 0.35


class Signer:
    """One trader's key: the HMAC state keyed once, copied per request (cheaper than keying it every time)."""

    __slots__ = ("account", "header", "mac")

    def __init__(self, trader: Trader) -> None:
        self.account = trader.account
        self.header = f"X-MBX-APIKEY: {trader.key}\r\n"
        self.mac = hmac.new(trader.secret.encode(), digestmod=hashlib.sha256)

    def sign(self, payload: str) -> str:
        mac = self.mac.copy()
        mac.update(payload.encode())
        return mac.hexdigest()


class OrderFlow:
    """Chooses and builds each request. ``deep`` holds (trader index, orderId) of acknowledged orders resting DEEP
    or more from the mid: the only ones a cancel may name."""

    def __init__(self, traders: list[Trader], host: str, symbol: str, mid: int, tick: Decimal, lot: Decimal,
                 run_tag: str, seed: int = 1) -> None:  # fmt: skip
        self.signers = [Signer(t) for t in traders]
        self.host = host
        self.symbol = symbol
        self.mid = mid
        self.tick = tick
        self.lot = lot
        self.tag = run_tag
        self.rng = random.Random(seed)
        self.deep: list[tuple[int, int]] = []
        self._prices: dict[int, str] = {}
        self._qtys: dict[int, str] = {}

    def client_oid(self, i: int) -> str:
        """The newClientOrderId of request ``i``: the run's tag and the request's index, so a check can find it."""
        return f"{self.tag}-{i:x}"

    def price(self, ticks: int) -> str:
        text = self._prices.get(ticks)
        if text is None:
            text = self._prices[ticks] = str(self.tick * ticks)
        return text

    def qty(self, lots: int) -> str:
        text = self._qtys.get(lots)
        if text is None:
            text = self._qtys[lots] = str(self.lot * lots)
        return text

    def next(self, i: int, now_ms: int, bad: bool = False) -> tuple[int, int, int, bool, bytes]:
        """Request ``i``: (kind, trader index, orderId it names (a cancel) or 0, whether a new order rests DEEP
        or more from the mid, the HTTP request)."""
        rng = self.rng
        r = rng.random()
        if r < CANCEL_SHARE and self.deep and not bad:
            k = rng.randrange(len(self.deep))
            who, order_id = self.deep[k]
            self.deep[k] = self.deep[-1]
            self.deep.pop()
            return CANCEL, who, order_id, False, self.cancel(who, order_id, now_ms)
        who = i % len(self.signers)
        side = "BUY" if rng.random() < 0.5 else "SELL"
        lots = max(10, min(2_000, int(rng.lognormvariate(4.5, 0.8))))
        if r < CANCEL_SHARE + TAKER_SHARE:
            through = 1 + rng.randrange(4)
            ticks = self.mid + through if side == "BUY" else self.mid - through
            tif, deep = "IOC", False
        else:
            depth = min(int(rng.expovariate(0.3)), 50)
            ticks = self.mid - 1 - depth if side == "BUY" else self.mid + 1 + depth
            tif, deep = "GTC", depth + 1 >= DEEP
        price = "1.001" if bad else self.price(ticks)  # bad: off the tick size, refused (-1013): tests only
        body = (f"symbol={self.symbol}&side={side}&type=LIMIT&timeInForce={tif}&quantity={self.qty(lots)}"
                f"&price={price}&newClientOrderId={self.client_oid(i)}&newOrderRespType=ACK&recvWindow=60000"
                f"&timestamp={now_ms}")  # fmt: skip
        signer = self.signers[who]
        body += "&signature=" + signer.sign(body)
        head = (f"POST /api/v3/order HTTP/1.1\r\nHost: {self.host}\r\n{signer.header}"
                f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
        return (BAD if bad else NEW), who, 0, deep, (head + body).encode()

    def cancel(self, who: int, order_id: int, now_ms: int) -> bytes:
        query = f"symbol={self.symbol}&orderId={order_id}&recvWindow=60000&timestamp={now_ms}"
        signer = self.signers[who]
        query += "&signature=" + signer.sign(query)
        return (f"DELETE /api/v3/order?{query} HTTP/1.1\r\nHost: {self.host}\r\n{signer.header}"
                "Content-Length: 0\r\n\r\n").encode()  # fmt: skip
