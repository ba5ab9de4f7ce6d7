"""Submitting commands to the sequencer and reading its acknowledgements.

Request ids
    Every command carries ``src`` (this client's id: a name, the pid and a random suffix, unless given) and
    ``req`` (a counter). The sequencer never journals a request id twice, so re-sending the *same* command
    object after a timeout is safe: it is journaled once and the retry is answered DUPLICATE with the original
    in_seq. Building a new command instead would be a new order.

Errors
    ``SequencerUnavailable``: no answer within the timeout (or no connection at all). The outcome is unknown: the
    command may or may not be journaled (Binance -1007). ``CommandRefused``: the sequencer answered MALFORMED,
    BUSY or UNAVAILABLE; nothing was journaled.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import time

import zmq
import zmq.asyncio
from prometheus_client import Histogram

from wire.codec import Ack, decode_ack, encode
from wire.commands import (
    CancelAll,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    PlaceOrder,
    ReplaceOrder,
    SetFeeRates,
    TakeSnapshot,
    Withdraw,
)
from wire.config import Settings, load_settings
from wire.enums import AckStatus, OrderType, SelfTradeMode, Side, TimeInForce
from wire.errors import CommandRefused, MalformedMessage, SequencerUnavailable
from wire.tracing import Tracer

OK = (AckStatus.JOURNALED, AckStatus.DUPLICATE)


def new_source(name: str) -> str:
    return f"{name}-{os.getpid()}-{secrets.token_hex(3)}"


class CommandBuilder:
    """Builds commands stamped with this client's request ids."""

    def __init__(self, src: str) -> None:
        self.src = src
        self._reqs = itertools.count(1)

    def next_req(self) -> int:
        return next(self._reqs)

    def place(
        self,
        account: int,
        symbol: str,
        side: Side,
        qty: int,
        price: int = 0,
        type: OrderType = OrderType.LIMIT,
        tif: TimeInForce = TimeInForce.GTC,
        client_oid: str = "",
        stp: SelfTradeMode = SelfTradeMode.EXPIRE_TAKER,
        quote_qty: int = 0,
    ) -> PlaceOrder:
        """``quote_qty`` (with ``qty`` 0 and a MARKET BUY): the quote amount to spend, in the asset's units."""
        req = self.next_req()
        return PlaceOrder(self.src, req, account, symbol, side, type, tif, price, qty, client_oid, stp, quote_qty)

    def cancel(self, account: int, symbol: str, order_id: int = 0, client_oid: str = "") -> CancelOrder:
        return CancelOrder(self.src, self.next_req(), account, symbol, order_id, client_oid)

    def replace(
        self,
        account: int,
        symbol: str,
        price: int,
        qty: int,
        order_id: int = 0,
        client_oid: str = "",
        new_client_oid: str = "",
    ) -> ReplaceOrder:
        return ReplaceOrder(
            self.src, self.next_req(), account, symbol, order_id, client_oid, new_client_oid, price, qty
        )

    def cancel_all(self, account: int, symbol: str) -> CancelAll:
        return CancelAll(self.src, self.next_req(), account, symbol)

    def take_snapshot(self) -> TakeSnapshot:
        return TakeSnapshot(self.src, self.next_req())

    def create_account(self, account: int) -> CreateAccount:
        return CreateAccount(self.src, self.next_req(), account)

    def deposit(self, account: int, asset: str, amount: int) -> Deposit:
        """``amount`` in the asset's integer units (wire.venue.AssetSpec.to_units)."""
        return Deposit(self.src, self.next_req(), account, asset, amount)

    def withdraw(self, account: int, asset: str, amount: int) -> Withdraw:
        return Withdraw(self.src, self.next_req(), account, asset, amount)

    def set_fee_rates(self, account: int, maker_bps: int, taker_bps: int) -> SetFeeRates:
        """The account's own rates on every symbol; -1 and -1 for the symbols' rates again."""
        return SetFeeRates(self.src, self.next_req(), account, maker_bps, taker_bps)


def _dealer(socket: zmq.Socket[bytes] | zmq.asyncio.Socket, endpoint: str) -> None:
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.IMMEDIATE, 1)  # queue nothing while disconnected: "sequencer down" is then certain
    socket.setsockopt(zmq.SNDHWM, 1_000_000)  # pipelined commands and their acks must not be dropped
    socket.setsockopt(zmq.RCVHWM, 1_000_000)
    socket.setsockopt(zmq.RECONNECT_IVL, 50)
    socket.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    socket.connect(endpoint)


def _check(ack: Ack) -> Ack:
    if ack.status not in OK:
        raise CommandRefused(ack.status, ack.detail)
    return ack


class SequencerClient(CommandBuilder):
    """Blocking client: one command in flight per ``submit``; ``send``/``recv_ack`` pipeline many."""

    def __init__(
        self, settings: Settings | None = None, name: str = "client", src: str | None = None, timeout: float = 2.0
    ) -> None:
        super().__init__(src or new_source(name))
        self.settings = settings or load_settings()
        self.timeout = timeout
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.socket = self._ctx.socket(zmq.DEALER)
        _dealer(self.socket, self.settings.sequencer_endpoint)

    def close(self) -> None:
        self.socket.close(0)
        self._ctx.term()

    def __enter__(self) -> SequencerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(self, cmd: Command) -> None:
        self.send_raw(encode(cmd))

    def send_raw(self, frame: bytes) -> None:
        """Send bytes as they are (tests use it to send garbage). Raises SequencerUnavailable if not connected."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.socket.send(frame, zmq.NOBLOCK)
                return
            except zmq.Again:
                if time.monotonic() > deadline:
                    raise SequencerUnavailable(
                        f"not connected to the sequencer at {self.settings.sequencer_endpoint}"
                    ) from None
                time.sleep(0.005)

    def recv_ack(self, timeout: float | None = None) -> Ack:
        wait = self.timeout if timeout is None else timeout
        if not self.socket.poll(int(wait * 1000)):
            raise SequencerUnavailable(f"no acknowledgement within {wait} s: the outcome is unknown")
        return decode_ack(self.socket.recv())

    def submit(self, cmd: Command) -> Ack:
        """Send one command and wait for its acknowledgement (answers to earlier timed-out commands are skipped)."""
        self.send(cmd)
        deadline = time.monotonic() + self.timeout
        while True:
            ack = self.recv_ack(max(0.0, deadline - time.monotonic()))
            if ack.req == cmd.req or (ack.req == 0 and ack.status is AckStatus.MALFORMED):
                return _check(ack)

    def submit_raw(self, frame: bytes) -> Ack:
        """Send arbitrary bytes and return the sequencer's answer, whatever it is (no exception for refusals)."""
        self.send_raw(frame)
        return self.recv_ack()


# the gateway -> sequencer -> journaled ack hop as a gateway sees it (a gateway process exports it; elsewhere unread)
ACK_SECONDS = Histogram(
    "mercury_gateway_ack_seconds",
    "From sending a command to the sequencer to its journaled acknowledgement",
    buckets=(1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.5, 2),
)


class AsyncSequencerClient(CommandBuilder):
    """asyncio client for gateways: many commands in flight, each ``submit`` awaits its own acknowledgement."""

    def __init__(
        self, settings: Settings | None = None, name: str = "gateway", src: str | None = None, timeout: float = 2.0
    ) -> None:
        super().__init__(src or new_source(name))
        self.settings = settings or load_settings()
        self.timeout = timeout
        self._ctx = zmq.asyncio.Context()
        self.socket = self._ctx.socket(zmq.DEALER)
        _dealer(self.socket, self.settings.sequencer_endpoint)
        self._pending: dict[int, asyncio.Future[Ack]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.released = False  # the gateway is stopping: no command waits for its acknowledgement any more
        self.tracer: Tracer | None = None  # a gateway's: the root span of each sampled command (wire/tracing)

    async def _read(self) -> None:
        while True:
            frame = await self.socket.recv()
            try:
                ack = decode_ack(frame)
            except MalformedMessage:
                continue
            future = self._pending.pop(ack.req, None)
            if future is not None and not future.done():
                future.set_result(ack)

    async def submit(self, cmd: Command) -> Ack:
        if self.released:
            raise SequencerUnavailable("the gateway is stopping")
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._pending[cmd.req] = future
        try:
            frame = encode(cmd)
            deadline = time.monotonic() + self.timeout
            while True:  # IMMEDIATE: nothing is queued until the connection is up, so wait for it (bounded)
                # stamped before the send: the sequencer may stamp its receipt before this coroutine resumes, and
                # the gateway's span must enclose the sequencer's
                sent, sent_ns = time.perf_counter(), time.time_ns()
                try:
                    await self.socket.send(frame, zmq.NOBLOCK)
                    break
                except zmq.Again:
                    if time.monotonic() > deadline:
                        raise SequencerUnavailable(
                            f"not connected to the sequencer at {self.settings.sequencer_endpoint}"
                        ) from None
                    if self.released:  # stopping, and the sequencer is gone (it stops first): never sent
                        raise SequencerUnavailable("the gateway is stopping") from None
                    await asyncio.sleep(0.005)
            try:
                ack = await asyncio.wait_for(future, self.timeout)
            except TimeoutError:
                raise SequencerUnavailable(f"no acknowledgement within {self.timeout} s: outcome unknown") from None
            ACK_SECONDS.observe(time.perf_counter() - sent)
            tracer = self.tracer
            if tracer is not None and ack.status is AckStatus.JOURNALED and tracer.sampled(ack.in_seq, ack.in_seq):
                tracer.span(ack.in_seq, f"gateway {type(cmd).__name__}", sent_ns, time.time_ns(),
                            {"mercury.src": cmd.src, "mercury.req": cmd.req})  # fmt: skip
        finally:
            self._pending.pop(cmd.req, None)
        return _check(ack)

    def release(self) -> None:
        """The gateway is stopping: every command still waiting for its acknowledgement, and every later one, fails
        now with ``SequencerUnavailable`` (its outcome unknown) instead of waiting out the timeout."""
        self.released = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SequencerUnavailable("the gateway is stopping: outcome unknown"))
                future.exception()  # marked as seen: a submit still in its send loop raises its own error instead

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except asyncio.CancelledError:
                pass
        self.socket.close(0)
        self._ctx.term()
