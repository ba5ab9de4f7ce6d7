"""What the FIX tests drive the gateway with: the gateway process itself, a QuickFIX initiator (a FIX engine nobody
on this project wrote), and raw sockets for what a good engine never sends."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import quickfix

from gateways.fix.bridge import fields_of
from gateways.fix.config import DATA_DICTIONARY
from tests.gateways.conftest import Exchange
from tests.harness import Service, free_port, wait_for

SOH = "\x01"
Fields = dict[int, str]


def fix_gateway(exchange: Exchange, state: Path, port: int | None = None) -> tuple[Service, int]:
    port = port or free_port()
    env = dict(exchange.gateway.env, MERCURY_FIX_PORT=str(port), MERCURY_FIX_STATE_DIR=str(state))
    return Service("gateways.fix", env, exchange.venue.dir / "fix-gateway.log", "FIX gateway on"), port


# a QuickFIX initiator --------------------------------------------------------------------------------------------


class Client(quickfix.Application):  # type: ignore[misc]
    """A FIX client on QuickFIX: logs on with an API key and its secret, and queues what it receives."""

    def __init__(self, key: str, secret: str, password: bool = True) -> None:
        super().__init__()
        self.key, self.secret, self.password = key, secret, password
        self.app: queue.Queue[Fields] = queue.Queue()
        self.admin: queue.Queue[Fields] = queue.Queue()
        self.logged_on = threading.Event()
        self.session_id: quickfix.SessionID | None = None

    def onCreate(self, session_id: quickfix.SessionID) -> None:
        self.session_id = session_id

    def onLogon(self, session_id: quickfix.SessionID) -> None:
        self.logged_on.set()

    def onLogout(self, session_id: quickfix.SessionID) -> None:
        self.logged_on.clear()

    def toAdmin(self, message: quickfix.Message, session_id: quickfix.SessionID) -> None:
        if message.getHeader().getField(35) == "A":
            message.setField(553, self.key)
            if self.password:
                message.setField(554, self.secret)

    def fromAdmin(self, message: quickfix.Message, session_id: quickfix.SessionID) -> None:
        self.admin.put(fields_of(message))

    def toApp(self, message: quickfix.Message, session_id: quickfix.SessionID) -> None:
        return None

    def fromApp(self, message: quickfix.Message, session_id: quickfix.SessionID) -> None:
        self.app.put(fields_of(message))

    def send(self, msg_type: str, fields: dict[int, str]) -> None:
        message = quickfix.Message()
        message.getHeader().setField(quickfix.MsgType(msg_type))
        for tag, value in fields.items():
            message.setField(tag, value)
        assert self.session_id is not None
        quickfix.Session.sendToTarget(message, self.session_id)

    def next(self, timeout: float = 10, msg_type: str | None = None) -> Fields:
        """The next application message (of ``msg_type``, skipping others)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.app.get(timeout=max(0.01, deadline - time.monotonic()))
            if msg_type is None or got[35] == msg_type:
                return got

    def reports(self, count: int, timeout: float = 10) -> list[Fields]:
        return [self.next(timeout) for _ in range(count)]

    def admin_of(self, msg_type: str, timeout: float = 10) -> Fields:
        deadline = time.monotonic() + timeout
        while True:
            got = self.admin.get(timeout=max(0.01, deadline - time.monotonic()))
            if got[35] == msg_type:
                return got


@contextlib.contextmanager
def initiator(client: Client, port: int, sender: str, store: Path, logon: bool = True) -> Iterator[Client]:
    store.mkdir(parents=True, exist_ok=True)
    text = "\n".join([
        "[DEFAULT]", "ConnectionType=initiator", "SocketConnectHost=127.0.0.1", f"SocketConnectPort={port}",
        "BeginString=FIX.4.4", "NonStopSession=Y", "HeartBtInt=30", "ReconnectInterval=1",
        f"FileStorePath={store}", "UseDataDictionary=Y", f"DataDictionary={DATA_DICTIONARY}",
        "", "[SESSION]", f"SenderCompID={sender}", "TargetCompID=MERCURY",
    ]) + "\n"  # fmt: skip
    (store / "initiator.cfg").write_text(text)
    settings = quickfix.SessionSettings(str(store / "initiator.cfg"))
    socket_initiator = quickfix.SocketInitiator(client, quickfix.FileStoreFactory(settings), settings)
    socket_initiator.start()
    try:
        if logon:
            wait_for(client.logged_on.is_set, 20, f"{sender} to log on")
        yield client
    finally:
        socket_initiator.stop()


# raw FIX over a socket -------------------------------------------------------------------------------------------


def utc_now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y%m%d-%H:%M:%S.") + f"{now.microsecond // 1000:03d}"


def frame(fields: list[tuple[int, str]], body_length: int | None = None, checksum: int | None = None) -> bytes:
    """A FIX 4.4 message from its fields after BodyLength: 8=FIX.4.4|9=len|...|10=sum (wrong ones on request)."""
    body = "".join(f"{tag}={value}{SOH}" for tag, value in fields)
    head = f"8=FIX.4.4{SOH}9={len(body) if body_length is None else body_length}{SOH}"
    total = sum((head + body).encode()) % 256 if checksum is None else checksum
    return (head + body + f"10={total:03d}{SOH}").encode()


def header(msg_type: str, seq: int, sender: str = "BOT3", target: str = "MERCURY") -> list[tuple[int, str]]:
    return [(35, msg_type), (49, sender), (56, target), (34, str(seq)), (52, utc_now())]


class Raw:
    """A FIX connection by hand: sends bytes, reads whole messages back."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, timeout: float = 5) -> Fields | None:
        """The next message, or None when the gateway closed the connection (or nothing came in ``timeout``)."""
        self.sock.settimeout(timeout)
        while True:
            end = self.buffer.find(b"\x0110=")
            if end >= 0 and self.buffer.find(b"\x01", end + 1) >= 0:
                stop = self.buffer.find(b"\x01", end + 1) + 1
                raw, self.buffer = self.buffer[:stop], self.buffer[stop:]
                out: Fields = {}
                for part in raw.decode("latin-1").split(SOH):
                    tag, _, value = part.partition("=")
                    if tag.isdigit():
                        out[int(tag)] = value
                return out
            try:
                chunk = self.sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                return None
            if not chunk:
                return None
            self.buffer += chunk

    def read_type(self, msg_type: str, timeout: float = 5) -> Fields | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.read(max(0.05, deadline - time.monotonic()))
            if got is None:
                return None
            if got.get(35) == msg_type:
                return got
        return None

    def closed(self, timeout: float = 10) -> bool:
        """Whether the gateway closes the connection (reading and dropping whatever comes first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except ConnectionResetError:
                return True
            except TimeoutError:
                return False
        return False

    def logon(self, key: str, secret: str, sender: str = "BOT3", seq: int = 1, reset: bool = True) -> Fields | None:
        fields: list[Any] = [*header("A", seq, sender), (98, "0"), (108, "30")]
        if reset:
            fields.append((141, "Y"))
        fields += [(553, key), (554, secret)]
        self.send(frame(fields))
        return self.read_type("A")
