"""The bridge between QuickFIX's threads and the gateway's event loop.

QuickFIX runs each session on its own thread and calls ``FixApplication`` there. Nothing those threads touch is
shared: each callback hands what it received (plain data: the message's fields) to the event loop with
``call_soon_threadsafe``, and a logon, which QuickFIX must accept or refuse at once, waits for the loop's answer.
Everything else lives on the loop and has one owner there: the ``Bridge`` owns the sessions; each ``FixSession``
owns its queue of requests (handled in the order received) and its pending cancels and replaces. What goes back
to QuickFIX leaves through one sender thread (``Bridge.outbox``), so the loop never waits on a QuickFIX lock.

Execution reports come from the gateway's live state (gateways/live.py): it pushes each account's
``executionReport`` events on the loop in engine order, and the session turns each into an ExecutionReport and
queues it for the sender thread, so reports reach the right session in engine order.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import quickfix
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from prometheus_client import Counter, Gauge

from gateways.binance import errors
from gateways.binance.auth import Caller
from gateways.binance.errors import ApiError
from gateways.binance.params import Params
from gateways.fix import messages as m
from gateways.fix.config import FixConfig
from gateways.http.app import Gateway
from wire.events import OrderRejected

log = logging.getLogger("mercury.gateway.fix")

HANDLED = frozenset({"D", "F", "G", "H", "q"})
# counted on QuickFIX's threads (prometheus_client is thread-safe); MsgType values are the dictionary's (QuickFIX
# rejects an unknown one before any callback), so the label set stays bounded
MESSAGES = Counter("mercury_fix_messages_total", "FIX messages through the gateway, by direction and MsgType",
                   ["direction", "msg_type"])  # fmt: skip
LOGONS_REFUSED = Counter("mercury_fix_logons_refused_total", "Logons answered with a Logout")
SESSIONS = Gauge("mercury_fix_sessions", "FIX sessions logged on")
USERNAME, PASSWORD, RAW_DATA, SENDING_TIME, MSG_SEQ_NUM, SENDER, TARGET = 553, 554, 96, 52, 34, 49, 56
LOGON_WINDOW = 60.0  # s: how far a signed logon's SendingTime may be from the gateway's clock
REJECT_WAIT = 5.0  # s an accepted (journaled) order's engine result is awaited, to report a refusal
SOH = "\x01"
# QuickFIX's session threads and the event loop take turns with the GIL for every message; Python hands it over
# every 5 ms by default, which would add up to that much to each hop: 0.2 ms keeps hops short
SWITCH_INTERVAL = 0.0002
MAX_IN_FLIGHT = 256  # new orders of one session awaiting their acknowledgement


def fields_of(message: quickfix.Message) -> dict[int, str]:
    """Header and body fields of a message (FIX text, tag=value separated by SOH); the last of a repeated tag."""
    out: dict[int, str] = {}
    for part in message.toString().split(SOH):
        tag, sep, value = part.partition("=")
        if sep and tag.isdigit():
            out[int(tag)] = value
    return out


def build(msg_type: str, fields: m.Fields) -> quickfix.Message:
    message = quickfix.Message()
    message.getHeader().setField(quickfix.MsgType(msg_type))
    for tag, value in fields:
        message.setField(tag, value)
    return message


def logon_payload(f: dict[int, str]) -> bytes:
    """What a signed logon signs (docs/fix.md): MsgType, SenderCompID, TargetCompID, MsgSeqNum and SendingTime of
    the Logon, joined by SOH."""
    return SOH.join(
        ["A", f.get(SENDER, ""), f.get(TARGET, ""), f.get(MSG_SEQ_NUM, ""), f.get(SENDING_TIME, "")]
    ).encode()


class FixSession:
    """One logged-on FIX session: its caller, its requests in order, and the reports of its account."""

    def __init__(self, bridge: Bridge, session_id: quickfix.SessionID, caller: Caller) -> None:
        self.bridge = bridge
        self.session_id = session_id
        self.caller = caller
        self.queue: asyncio.Queue[tuple[str, dict[int, str]]] = asyncio.Queue()
        self.pending_cancel: dict[str, str] = {}  # order id or its ClOrdID -> the cancel request's ClOrdID
        self.pending_replace: dict[str, str] = {}  # order id or its ClOrdID -> the replace request's ClOrdID
        self.held: dict[str, Any] | None = None  # a replaced order's cancel, until its new order's report
        self.worker = asyncio.get_running_loop().create_task(self._work())
        self.watchers: set[asyncio.Task[None]] = set()
        self.in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)

    def close(self) -> None:
        self.worker.cancel()
        for task in self.watchers:
            task.cancel()

    def send(self, msg_type: str, fields: m.Fields) -> None:
        self.bridge.outbox.put((msg_type, fields, self.session_id))

    # reports from the engine's events, in engine order ---------------------------------------------------------

    def push(self, account: int, payload: dict[str, Any]) -> None:
        if payload.get("e") != "executionReport":
            return
        order_id = str(payload["i"])
        original = payload.get("C") or payload["c"]
        held, self.held = self.held, None
        if held is not None:
            if payload["x"] == "NEW" and payload["I"] == held["I"]:
                # a replace that moved the order (a new id) is one engine event: the old order's cancel and the
                # new order's acceptance, which FIX reports as one Replaced
                self.send("8", m.execution_report(payload | {"x": "REPLACED"}, self.bridge.exec_id(), payload["c"],
                                                  held["c"]))  # fmt: skip
                return
            self.send("8", m.execution_report(held, self.bridge.exec_id()))
        cl_ord_id: str | None = None
        orig: str | None = None
        if payload["x"] == "CANCELED":
            if self.pending_replace.pop(order_id, None) or self.pending_replace.pop(original, None):
                self.held = payload
                return
            cl_ord_id = self.pending_cancel.pop(order_id, None) or self.pending_cancel.pop(original, None)
            orig = original if cl_ord_id else None
        elif payload["x"] == "REPLACED":  # amended in place (kept its id and queue position)
            if self.pending_replace.pop(order_id, None) is None:
                self.pending_replace.pop(original, None)
            cl_ord_id = payload["c"]
            orig = payload.get("C") or None
        self.send("8", m.execution_report(payload, self.bridge.exec_id(), cl_ord_id, orig))

    # requests, one at a time --------------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            msg_type, f = await self.queue.get()
            if msg_type == "D":
                # new orders are pipelined: each runs to the sequencer's socket before the next request is taken
                # (sleep(0) lets it get there), so they are journaled in the order received while their
                # acknowledgements overlap
                await self.in_flight.acquire()
                task = asyncio.get_running_loop().create_task(self._guarded("D", f))
                self.watchers.add(task)
                task.add_done_callback(self._order_done)
                await asyncio.sleep(0)
                continue
            await self._guarded(msg_type, f)

    def _order_done(self, task: asyncio.Task[None]) -> None:
        self.watchers.discard(task)
        self.in_flight.release()

    async def _guarded(self, msg_type: str, f: dict[int, str]) -> None:
        try:
            await self._handle(msg_type, f)
        except Exception:  # one bad request must not end the session's worker
            log.exception("FIX %s from %s failed", msg_type, self.session_id)
            self.send("j", m.business_reject(msg_type, f.get(m.CL_ORD_ID, ""), m.BUSINESS_OTHER,
                                             "internal error; the request was not processed"))  # fmt: skip

    async def _handle(self, msg_type: str, f: dict[int, str]) -> None:
        gw = self.bridge.gateway
        if msg_type == "D":
            await self._new_order(f)
        elif msg_type == "F":
            ref = m.order_ref(f)
            self._expect(self.pending_cancel, ref, f)
            try:
                params = ref | ({"newClientOrderId": f[m.CL_ORD_ID]} if m.CL_ORD_ID in f else {})
                await gw.cancel_order(self.caller, Params.of_mapping(params, ""), {})
            except ApiError as exc:
                self._forget(self.pending_cancel, ref)
                if not self._business(exc, "F", f):
                    self.send("9", m.cancel_reject(f, ref.get("orderId", ""), "1",
                                                   m.CXL_REJ_REASONS.get(exc.code, "99"), exc.msg))  # fmt: skip
        elif msg_type == "G":
            await self._replace(f)
        elif msg_type == "H":
            await self._status(f)
        elif msg_type == "q":
            await self._mass_cancel(f)

    async def _new_order(self, f: dict[int, str]) -> None:
        gw = self.bridge.gateway
        try:
            params = m.order_params(f)
        except m.Refused as exc:
            self.send("8", m.rejected_order({}, f, self.bridge.exec_id(), exc.reason, exc.text))
            return
        try:
            answer = await gw.new_order(self.caller, Params.of_mapping(params, ""), {})
        except ApiError as exc:
            if not self._business(exc, "D", f):
                self.send("8", m.rejected_order(params, f, self.bridge.exec_id(), m.rejection_reason(exc), exc.msg))
            return
        # journaled: the engine reports the order from here on; a refusal has no event on the user stream, so
        # its result is watched for, without holding up this session's next request
        task = asyncio.get_running_loop().create_task(self._watch_refusal(int(answer["orderId"]), params, f))
        self.watchers.add(task)
        task.add_done_callback(self.watchers.discard)

    async def _watch_refusal(self, in_seq: int, params: dict[str, Any], f: dict[int, str]) -> None:
        live = self.bridge.gateway.live
        assert live is not None
        events = await live.result(in_seq, REJECT_WAIT)
        if events and isinstance(events[0], OrderRejected):
            error = errors.rejected(events[0].reason, events[0].detail, market=params["type"] == "MARKET")
            self.send("8", m.rejected_order(params, f, self.bridge.exec_id(), m.rejection_reason(error), error.msg,
                                            str(in_seq)))  # fmt: skip

    async def _replace(self, f: dict[int, str]) -> None:
        gw = self.bridge.gateway
        ref = m.order_ref(f)
        params: dict[str, Any] = {"symbol": ref["symbol"], "cancelReplaceMode": "STOP_ON_FAILURE",
                                  "newOrderRespType": "ACK"}  # fmt: skip
        if "orderId" in ref:
            params["cancelOrderId"] = ref["orderId"]
        elif "origClientOrderId" in ref:
            params["cancelOrigClientOrderId"] = ref["origClientOrderId"]
        try:
            order = m.order_params(f)
        except m.Refused as exc:
            self.send("9", m.cancel_reject(f, ref.get("orderId", ""), "2", "99", exc.text))
            return
        order.pop("newOrderRespType")
        params |= order
        self._expect(self.pending_replace, ref, f)
        try:
            await gw.cancel_replace(self.caller, Params.of_mapping(params, ""), {})
        except ApiError as exc:
            self._forget(self.pending_replace, ref)
            if not self._business(exc, "G", f):
                text = exc.msg
                cancel = (exc.data or {}).get("cancelResponse")
                if isinstance(cancel, dict) and cancel.get("msg"):  # cancel-replace's details: the cancel failed
                    text = str(cancel["msg"])
                self.send("9", m.cancel_reject(f, ref.get("orderId", ""), "2",
                                               m.CXL_REJ_REASONS.get(exc.code, "99"), text))  # fmt: skip

    async def _status(self, f: dict[int, str]) -> None:
        gw = self.bridge.gateway
        ref = m.order_ref(f)
        try:
            order = await gw.query_order(self.caller, Params.of_mapping(ref, ""), {})
        except ApiError as exc:
            if not self._business(exc, "H", f):
                fields = m.rejected_order({}, f, self.bridge.exec_id(), "5", exc.msg, f.get(m.ORDER_ID, "NONE"))
                fields = [(t, "I") if t == m.EXEC_TYPE else (t, v) for t, v in fields]
                self.send("8", fields)
            return
        report = {"i": order["orderId"], "c": order["clientOrderId"], "x": "STATUS", "X": order["status"],
                  "s": order["symbol"], "S": order["side"], "o": order["type"], "q": order["origQty"],
                  "z": order["executedQty"], "Z": order["cummulativeQuoteQty"], "p": order["price"],
                  "f": order["timeInForce"], "T": order["updateTime"]}  # fmt: skip
        self.send("8", m.execution_report(report, self.bridge.exec_id()))

    async def _mass_cancel(self, f: dict[int, str]) -> None:
        gw = self.bridge.gateway
        kind = f.get(m.MASS_CANCEL_REQUEST_TYPE, "")
        if kind == "1":
            symbols = [f.get(m.SYMBOL, "")]
        elif kind == "7":
            symbols = list(gw.specs)
        else:
            self._mass_report(
                f, kind, 0, "1", f"MassCancelRequestType {kind!r}: Mercury cancels by symbol (1) or all (7)"
            )
            return
        total = 0
        for symbol in symbols:
            try:
                total += len(await gw.cancel_all(self.caller, Params.of_mapping({"symbol": symbol}, ""), {}))
            except ApiError as exc:
                if exc.code == -2011:
                    continue  # no open order of that symbol
                if exc.code == -1121:
                    self._mass_report(f, kind, 0, "2", exc.msg)
                    return
                if not self._business(exc, "q", f):
                    self._mass_report(f, kind, total, "99", exc.msg)
                return
        self._mass_report(f, kind, total, None, "")

    def _mass_report(self, f: dict[int, str], kind: str, total: int, reject: str | None, text: str) -> None:
        fields: m.Fields = [(m.CL_ORD_ID, f.get(m.CL_ORD_ID, "")), (m.ORDER_ID, "NONE"),
                            (m.MASS_CANCEL_REQUEST_TYPE, kind or "1"),
                            (m.MASS_CANCEL_RESPONSE, "0" if reject else kind),
                            (m.TOTAL_AFFECTED_ORDERS, str(total))]  # fmt: skip
        if reject:
            fields += [(m.MASS_CANCEL_REJECT_REASON, reject), (m.TEXT, text[:200])]
        self.send("r", fields)

    def _business(self, exc: ApiError, msg_type: str, f: dict[int, str]) -> bool:
        """Throttling and engine lag are BusinessMessageRejects (j), not order rejections."""
        if exc.status == 429:
            why = f"throttled: {exc.msg} (retry after {exc.retry_after or 1} s)"
            self.send("j", m.business_reject(msg_type, f.get(m.CL_ORD_ID, ""), m.BUSINESS_OTHER, why))
            return True
        if exc.status == 503:
            self.send("j", m.business_reject(msg_type, f.get(m.CL_ORD_ID, ""), m.BUSINESS_NOT_AVAILABLE,
                                             f"{exc.msg} (retry after {exc.retry_after or 1} s)"))  # fmt: skip
            return True
        return False

    @staticmethod
    def _expect(pending: dict[str, str], ref: dict[str, Any], f: dict[int, str]) -> None:
        key = ref.get("orderId") or ref.get("origClientOrderId")
        if key and m.CL_ORD_ID in f:
            pending[str(key)] = f[m.CL_ORD_ID]

    @staticmethod
    def _forget(pending: dict[str, str], ref: dict[str, Any]) -> None:
        pending.pop(str(ref.get("orderId") or ref.get("origClientOrderId")), None)


class Bridge:
    """The loop's side: logons, sessions, and the requests QuickFIX's threads hand over."""

    def __init__(self, gateway: Gateway, config: FixConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.gateway = gateway
        self.config = config
        self.loop = loop
        self.sessions: dict[str, FixSession] = {}  # by the client's CompID
        self._exec_ids = itertools.count(1)
        self._epoch = time.time_ns() // 1_000_000  # ExecIDs stay unique across restarts
        # Messages go to QuickFIX from a thread of their own, never from the loop: sending takes the session's
        # lock, which that session's thread holds while it waits for the loop to check a logon. Sent from the loop,
        # that would be a deadlock; from this thread it is a short wait. One thread keeps the order.
        self.outbox: queue.SimpleQueue[tuple[str, m.Fields, quickfix.SessionID] | None] = queue.SimpleQueue()
        self.sender = threading.Thread(target=self._send_all, name="fix-sender", daemon=True)
        self.sender.start()

    def _send_all(self) -> None:
        while (item := self.outbox.get()) is not None:
            msg_type, fields, session_id = item
            try:
                quickfix.Session.sendToTarget(build(msg_type, fields), session_id)
            except quickfix.SessionNotFound:
                log.warning("session %s is gone: %s not sent", session_id, msg_type)

    def close(self) -> None:
        self.outbox.put(None)
        self.sender.join(5)

    def exec_id(self) -> str:
        return f"{self._epoch}-{next(self._exec_ids)}"

    def post(self, fn: Callable[..., None], *args: Any) -> None:
        """From a QuickFIX thread: run ``fn(*args)`` on the loop."""
        self.loop.call_soon_threadsafe(fn, *args)

    # logon (a QuickFIX thread waits for the answer) -----------------------------------------------------------

    def check_logon(self, session_id: quickfix.SessionID, f: dict[int, str]) -> str | None:
        future = asyncio.run_coroutine_threadsafe(self._logon(session_id, f), self.loop)
        try:
            return future.result(10)
        except TimeoutError:
            return "the gateway could not check the logon in time; try again"

    async def _logon(self, session_id: quickfix.SessionID, f: dict[int, str]) -> str | None:
        """Why the logon is refused, or None (and the session is set up)."""
        target = session_id.getTargetCompID().getValue()
        config = self.config.session(target)
        if config is None:
            return f"unknown session {target}"
        keys = self.gateway.keys
        assert keys is not None
        key_id = f.get(USERNAME, "")
        key = await keys.get(key_id) if key_id.isalnum() else None
        if key is None or key.revoked_at is not None:
            return "Username (553) must be an active API key"
        if config.account is not None and key.account != config.account:
            return f"this key's account may not use session {target}"
        if PASSWORD in f:
            if key.kind != "HMAC" or key.secret is None or not hmac.compare_digest(f[PASSWORD], key.secret):
                return "wrong Password (554)"
        elif RAW_DATA in f:
            why = _signature_problem(key.kind, key.secret, key.public_key, f)
            if why:
                return why
        else:
            return "Logon needs Password (554) or a signature in RawData (96)"
        old = self.sessions.pop(target, None)
        if old is not None:
            old.close()
        session = FixSession(self, session_id, Caller(key.key_id, key.account))
        self.sessions[target] = session
        SESSIONS.set(len(self.sessions))
        live = self.gateway.live
        assert live is not None
        live.subscribe(key.account, session)
        log.info("FIX session %s logged on for account %d", target, key.account)
        return None

    def logged_out(self, session_id: quickfix.SessionID) -> None:
        target = session_id.getTargetCompID().getValue()
        session = self.sessions.pop(target, None)
        if session is not None:
            live = self.gateway.live
            assert live is not None
            live.unsubscribe(session.caller.account, session)
            session.close()
            SESSIONS.set(len(self.sessions))
            log.info("FIX session %s logged out", target)

    def received(self, session_id: quickfix.SessionID, msg_type: str, f: dict[int, str]) -> None:
        session = self.sessions.get(session_id.getTargetCompID().getValue())
        if session is not None:
            session.queue.put_nowait((msg_type, f))


def _signature_problem(kind: str, secret: str | None, public_key: bytes | None, f: dict[int, str]) -> str | None:
    try:
        sent = datetime.strptime(f.get(SENDING_TIME, ""), "%Y%m%d-%H:%M:%S.%f").replace(tzinfo=UTC)
    except ValueError:
        try:
            sent = datetime.strptime(f.get(SENDING_TIME, ""), "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            return "SendingTime (52) is not a UTC timestamp"
    if abs(time.time() - sent.timestamp()) > LOGON_WINDOW:
        return f"SendingTime (52) is more than {LOGON_WINDOW:g} s from the gateway's clock"
    payload = logon_payload(f)
    signature = f[RAW_DATA]
    if kind == "HMAC":
        assert secret is not None
        expected = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
        return None if signature.isascii() and hmac.compare_digest(expected, signature.lower()) else "bad signature"
    assert public_key is not None
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(base64.b64decode(signature, validate=True), payload)
    except (binascii.Error, ValueError, InvalidSignature):
        return "bad signature"
    return None


class FixApplication(quickfix.Application):  # type: ignore[misc]
    """QuickFIX's callbacks, on its threads: each hands plain data to the loop and keeps nothing."""

    def __init__(self, bridge: Bridge) -> None:
        super().__init__()
        self.bridge = bridge

    def onCreate(self, session_id: quickfix.SessionID) -> None:
        return None

    def onLogon(self, session_id: quickfix.SessionID) -> None:
        return None

    def onLogout(self, session_id: quickfix.SessionID) -> None:
        self.bridge.post(self.bridge.logged_out, session_id)

    def toAdmin(self, message: quickfix.Message, session_id: quickfix.SessionID) -> None:
        MESSAGES.labels("out", message.getHeader().getField(35)).inc()

    def fromAdmin(self, message: quickfix.Message, session_id: quickfix.SessionID) -> None:
        msg_type = message.getHeader().getField(35)
        MESSAGES.labels("in", msg_type).inc()
        if msg_type == "A":
            why = self.bridge.check_logon(session_id, fields_of(message))
            if why is not None:
                LOGONS_REFUSED.inc()
                raise quickfix.RejectLogon(why)

    def toApp(self, message: quickfix.Message, session_id: quickfix.SessionID) -> None:
        MESSAGES.labels("out", message.getHeader().getField(35)).inc()

    def fromApp(self, message: quickfix.Message, session_id: quickfix.SessionID) -> None:
        msg_type = message.getHeader().getField(35)
        MESSAGES.labels("in", msg_type).inc()
        if msg_type not in HANDLED:
            raise quickfix.UnsupportedMessageType()  # QuickFIX answers BusinessMessageReject, reason 3
        self.bridge.post(self.bridge.received, session_id, msg_type, fields_of(message))
