"""The FIX gateway's sessions, from a TOML file (config/fix.toml), and the QuickFIX acceptor settings made from them.

QuickFIX reads its settings from a file; it is written into the gateway's state directory at start, next to the
message store (sequence numbers and sent messages, so that both survive a restart) and the session logs.
"""

from __future__ import annotations

import sysconfig
import tomllib
from dataclasses import dataclass
from pathlib import Path

from wire.errors import ConfigError

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "config" / "fix.toml"
# QuickFIX's own FIX 4.4 data dictionary: the quickfix package installs it as data (<prefix>/share/quickfix)
DATA_DICTIONARY = Path(sysconfig.get_path("data")) / "share" / "quickfix" / "FIX44.xml"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    target_comp_id: str  # the client's SenderCompID
    account: int | None  # only keys of this account may log on (None: any)


@dataclass(frozen=True, slots=True)
class FixConfig:
    port: int
    sender_comp_id: str
    heartbeat_seconds: int
    sessions: tuple[SessionConfig, ...]

    def session(self, target_comp_id: str) -> SessionConfig | None:
        return next((s for s in self.sessions if s.target_comp_id == target_comp_id), None)

    def quickfix_settings(self, state_dir: Path, host: str, port: int | None = None) -> str:
        """QuickFIX's settings text: one acceptor, every session on one port."""
        lines = [
            "[DEFAULT]",
            "ConnectionType=acceptor",
            f"SocketAcceptHost={host}",
            f"SocketAcceptPort={port or self.port}",
            f"SenderCompID={self.sender_comp_id}",
            "BeginString=FIX.4.4",
            "NonStopSession=Y",  # no daily session end: sequence numbers reset only when a client asks (141=Y)
            f"FileStorePath={state_dir / 'store'}",
            f"FileLogPath={state_dir / 'log'}",
            "UseDataDictionary=Y",
            f"DataDictionary={DATA_DICTIONARY}",
            "ValidateUserDefinedFields=N",
            "AllowUnknownMsgFields=N",
            "CheckLatency=Y",
            "MaxLatency=120",
            "ResetOnLogon=N",
            "ResetOnLogout=N",
            "ResetOnDisconnect=N",
            "PersistMessages=Y",
            "SocketNodelay=Y",
        ]
        for s in self.sessions:
            lines += ["", "[SESSION]", f"TargetCompID={s.target_comp_id}"]
        return "\n".join(lines) + "\n"


def load_fix_config(path: Path | str | None = None) -> FixConfig:
    file = Path(path) if path else DEFAULT_FILE
    try:
        data = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{file}: {exc}") from None
    sessions = []
    for entry in data.get("sessions", []):
        target = entry.get("target_comp_id")
        if not isinstance(target, str) or not target:
            raise ConfigError(f"{file}: every [[sessions]] needs a target_comp_id")
        account = entry.get("account")
        if account is not None and not isinstance(account, int):
            raise ConfigError(f"{file}: account of session {target} must be an integer")
        sessions.append(SessionConfig(target, account))
    if len({s.target_comp_id for s in sessions}) != len(sessions):
        raise ConfigError(f"{file}: a target_comp_id is listed twice")
    return FixConfig(int(data.get("port", 9878)), str(data.get("sender_comp_id", "MERCURY")),
                     int(data.get("heartbeat_seconds", 30)), tuple(sessions))  # fmt: skip
