"""FIX 4.4 order entry as an outside bot uses it: a QuickFIX initiator on the session config/fix.toml reserves for
the simulator (SenderCompID SIMTRADER), logging on with an API key and its secret (docs/fix.md).

QuickFIX runs the session on its own thread and reconnects by itself when the gateway goes away. Its callbacks only
hand what arrived to the event loop (``call_soon_threadsafe``); each request waits there for the first answer that
names its ClOrdID: an ExecutionReport, an OrderCancelReject, a BusinessMessageReject or a mass cancel report.
Sequence numbers are reset at every logon, so no message store has to outlive the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import quickfix

from sim.grid import text
from sim.orders import Action, Cancel, Order, Outcome, Place, Replace, Report, no_answer
from sim.rest import Gate

log = logging.getLogger("sim.fix")

SOH = "\x01"
SENDER = "SIMTRADER"  # config/fix.toml's session for the simulator
TARGET = "MERCURY"
ANSWER_TIMEOUT = 10.0  # s: a request with no answer by then is counted as unanswered
ORD_STATUS = {"0": "NEW", "1": "PARTIALLY_FILLED", "2": "FILLED", "4": "CANCELED", "8": "REJECTED", "C": "EXPIRED"}
DONE = frozenset({"2", "4", "8", "C"})
RETRY = re.compile(r"retry after (\d+) s")


def fields_of(message: quickfix.Message) -> dict[int, str]:
    out: dict[int, str] = {}
    for part in message.toString().split(SOH):
        tag, sep, value = part.partition("=")
        if sep and tag.isdigit():
            out[int(tag)] = value
    return out


def utc_now() -> str:
    """FIX UTCTimestamp with milliseconds (TransactTime: when the order was sent, not a decision)."""
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def new_order_fields(order: Order) -> dict[int, str]:
    fields = {11: order.client_id, 55: order.symbol, 54: "1" if order.side == "BUY" else "2", 60: utc_now()}
    if order.qty is not None:
        fields[38] = text(order.qty)
    if order.quote_qty is not None:
        fields[152] = text(order.quote_qty)
    if order.type == "MARKET":
        fields[40] = "1"
    else:
        assert order.price is not None
        fields |= {40: "2", 44: text(order.price), 59: {"GTC": "1", "IOC": "3", "FOK": "4"}[order.tif or "GTC"]}
    return fields


def settings_text(host: str, port: int, data_dictionary: Path, sender: str = SENDER) -> str:
    return "\n".join([
        "[DEFAULT]", "ConnectionType=initiator", f"SocketConnectHost={host}", f"SocketConnectPort={port}",
        "BeginString=FIX.4.4", "NonStopSession=Y", "HeartBtInt=30", "ReconnectInterval=2",
        # a fresh sequence at every logon: after a restart of either side nothing has to be resent
        "ResetOnLogon=Y", "ResetOnLogout=Y", "ResetOnDisconnect=Y",
        "UseDataDictionary=Y", f"DataDictionary={data_dictionary}",
        "", "[SESSION]", f"SenderCompID={sender}", f"TargetCompID={TARGET}",
    ]) + "\n"  # fmt: skip


class _Application(quickfix.Application):  # type: ignore[misc]
    """QuickFIX's callbacks, on its thread: each only posts to the loop."""

    def __init__(self, trader: FixTrader) -> None:
        super().__init__()
        self.trader = trader

    def onCreate(self, session_id: quickfix.SessionID) -> None:
        self.trader.session_id = session_id

    def onLogon(self, session_id: quickfix.SessionID) -> None:
        self.trader.post(self.trader.logged_on.set)

    def onLogout(self, session_id: quickfix.SessionID) -> None:
        self.trader.post(self.trader.lost)

    def toAdmin(self, message: quickfix.Message, session_id: quickfix.SessionID) -> None:
        if message.getHeader().getField(35) == "A":
            message.setField(553, self.trader.key)
            message.setField(554, self.trader.secret)

    def fromAdmin(self, message: quickfix.Message, session_id: quickfix.SessionID) -> None:
        fields = fields_of(message)
        if fields.get(35) == "5" and fields.get(58):
            self.trader.post(self.trader.refused, fields[58])

    def toApp(self, message: quickfix.Message, session_id: quickfix.SessionID) -> None:
        return None

    def fromApp(self, message: quickfix.Message, session_id: quickfix.SessionID) -> None:
        self.trader.post(self.trader.received, fields_of(message))


class FixTrader:
    """One account trading over the simulator's FIX session."""

    protocol = "fix"

    def __init__(self, account: int, key: str, secret: str, host: str, port: int, state_dir: Path,
                 data_dictionary: Path, on_report: Callable[[Report], None]) -> None:  # fmt: skip
        self.account = account
        self.key = key
        self.secret = secret
        self.host = host
        self.port = port
        self.state_dir = state_dir
        self.data_dictionary = data_dictionary
        self.on_report = on_report
        self.gate = Gate()
        self.logged_on = asyncio.Event()
        self.session_id: quickfix.SessionID | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[str, asyncio.Future[Outcome]] = {}
        self._ids = itertools.count(1)
        self._initiator: Any = None
        self._last_refusal = ""

    # QuickFIX's thread -> the loop -----------------------------------------------------------------------------

    def post(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is closing: nothing waits any more
                loop.call_soon_threadsafe(fn, *args)

    def lost(self) -> None:
        self.logged_on.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_result(no_answer("fix logged out"))

    def refused(self, reason: str) -> None:
        if reason != self._last_refusal:  # QuickFIX retries every few seconds: say it once
            log.warning("FIX session %s: the gateway logged us out: %s", SENDER, reason)
            self._last_refusal = reason

    def received(self, f: dict[int, str]) -> None:
        msg_type = f.get(35)
        if msg_type == "8":
            self._report(f)
            self._answer(f.get(11, ""), self._report_outcome(f))
        elif msg_type == "9":  # OrderCancelReject: CxlRejReason 1 is an order that is no longer open
            reason = f.get(102, "")
            self._answer(f.get(11, ""), Outcome(ok=False, gone=True) if reason == "1" else
                         Outcome(ok=False, code=f"FIX 102={reason}", msg=f.get(58, "")))  # fmt: skip
        elif msg_type == "j":
            self._answer(f.get(379, ""), self._business_reject(f))
        elif msg_type == "r":
            ok = f.get(531, "0") != "0"
            self._answer(
                f.get(11, ""), Outcome(ok=ok, code=None if ok else f"FIX 532={f.get(532, '')}", msg=f.get(58, ""))
            )

    def _report(self, f: dict[int, str]) -> None:
        exec_type = f.get(150, "")
        if exec_type == "I":  # an order status answer
            return
        fill = exec_type == "F"
        # a cancel's report carries the cancel request's ClOrdID and the order's in OrigClOrdID
        client_id = f.get(41) if exec_type == "4" and f.get(41) else f.get(11, "")
        side = "BUY" if f.get(54) == "1" else "SELL"
        self.on_report(Report(symbol=f.get(55, ""), client_id=client_id or "", side=side,
                              fill_qty=Decimal(f[32]) if fill else Decimal(0),
                              fill_price=Decimal(f[31]) if fill else Decimal(0), done=f.get(39) in DONE))  # fmt: skip

    @staticmethod
    def _report_outcome(f: dict[int, str]) -> Outcome:
        if f.get(150) == "8":
            return Outcome(ok=False, code=f"FIX 103={f.get(103, '')}", msg=f.get(58, ""))
        return Outcome(ok=True, status=ORD_STATUS.get(f.get(39, ""), ""))

    def _business_reject(self, f: dict[int, str]) -> Outcome:
        """Throttled (reason 0) holds this session's orders, the engine behind (reason 4) too, each for the
        seconds the gateway said."""
        reason, why = f.get(380, ""), f.get(58, "")
        found = RETRY.search(why)
        wait = float(found[1]) if found else 1.0
        if reason in ("0", "4") and ("throttled" in why or reason == "4"):
            self.gate.block(wait)
            return Outcome(ok=False, code="FIX throttled" if reason == "0" else "FIX busy", msg=why, retry_after=wait)
        return Outcome(ok=False, code=f"FIX 380={reason}", msg=why)

    def _answer(self, cl_ord_id: str, outcome: Outcome) -> None:
        future = self._pending.get(cl_ord_id)
        if future is not None and not future.done():
            future.set_result(outcome)

    # the loop ------------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = self.state_dir / "initiator.cfg"
        config.write_text(settings_text(self.host, self.port, self.data_dictionary))
        settings = quickfix.SessionSettings(str(config))
        self._initiator = quickfix.SocketInitiator(_Application(self), quickfix.MemoryStoreFactory(), settings)
        self._initiator.start()  # QuickFIX's threads connect, log on, and reconnect whenever the link drops

    async def close(self) -> None:
        if self._initiator is not None:
            initiator, self._initiator = self._initiator, None
            # a Logout, then QuickFIX's threads end; from a daemon thread of its own, so that a gateway that never
            # answers cannot keep the process from exiting (the loop's executor would be waited for)
            stopped = threading.Event()

            def stop() -> None:
                initiator.stop()
                stopped.set()

            threading.Thread(target=stop, name="fix-stop", daemon=True).start()
            deadline = time.monotonic() + 10
            while not stopped.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)

    async def ready(self) -> None:
        await self.gate.wait()
        with contextlib.suppress(TimeoutError):  # not logged on yet: the request will say so
            async with asyncio.timeout(5):
                await self.logged_on.wait()

    async def _request(self, msg_type: str, fields: dict[int, str]) -> Outcome:
        if not self.logged_on.is_set() or self.session_id is None:
            self.gate.block(0.5)
            return no_answer("fix not logged on")
        message = quickfix.Message()
        message.getHeader().setField(quickfix.MsgType(msg_type))
        for tag, value in fields.items():
            message.setField(tag, value)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending[fields[11]] = future
        try:
            try:
                quickfix.Session.sendToTarget(message, self.session_id)
            except quickfix.SessionNotFound:
                return no_answer("fix session not found")
            async with asyncio.timeout(ANSWER_TIMEOUT):
                return await future
        except TimeoutError:
            return no_answer("fix timeout")
        finally:
            self._pending.pop(fields[11], None)

    async def execute(self, action: Action) -> Outcome:
        if isinstance(action, Place):
            return await self._request("D", new_order_fields(action.order))
        if isinstance(action, Replace):
            order = action.order
            fields = new_order_fields(order) | {41: action.old_client_id}
            return await self._request("G", fields)
        assert isinstance(action, Cancel)
        return await self._request("F", {11: f"{action.client_id}-x", 41: action.client_id, 55: action.symbol,
                                         54: "1" if action.side == "BUY" else "2", 60: utc_now()})  # fmt: skip

    async def cancel_all(self, symbol: str) -> Outcome:
        return await self._request("q", {11: f"mass-{self.account}-{next(self._ids)}", 530: "1", 55: symbol,
                                         60: utc_now()})  # fmt: skip
