"""``python -m gateways.fix``: the FIX 4.4 order-entry gateway (QuickFIX acceptor) on MERCURY_FIX_PORT or the port
config/fix.toml gives (docs/fix.md). It runs the HTTP gateway's operations (gateways/http/app.py): the same checks,
the same live state, the same sequencer client."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import quickfix
import uvloop

from gateways.fix.bridge import SWITCH_INTERVAL, Bridge, FixApplication
from gateways.fix.config import load_fix_config
from gateways.http.app import Gateway
from gateways.startup import start_gateway
from persistence.apikeys import SecretCipher
from wire.config import Settings
from wire.venue import Venue

log = logging.getLogger("mercury.gateway.fix")


async def serve(settings: Settings, venue: Venue, cipher: SecretCipher) -> None:
    config = load_fix_config(settings.fix_config_file or None)
    state = Path(settings.fix_state_dir).resolve()
    (state / "store").mkdir(parents=True, exist_ok=True)
    (state / "log").mkdir(parents=True, exist_ok=True)
    port = settings.fix_port or config.port
    settings_file = state / "quickfix.cfg"
    settings_file.write_text(config.quickfix_settings(state, settings.fix_host, port))
    gateway = Gateway(settings, venue, cipher)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopping() -> None:
        stop.set()
        gateway.stopping()  # orders waiting for the engine answered (unknown outcome) before the stop's deadline

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping)
    async with gateway.lifespan():
        bridge = Bridge(gateway, config, loop)
        application = FixApplication(bridge)
        qf_settings = quickfix.SessionSettings(str(settings_file))
        acceptor = quickfix.ThreadedSocketAcceptor(application, quickfix.FileStoreFactory(qf_settings), qf_settings,
                                                   quickfix.FileLogFactory(qf_settings))  # fmt: skip
        acceptor.start()
        log.info("FIX gateway on %s:%d, sessions %s", settings.fix_host, port,
                 ", ".join(s.target_comp_id for s in config.sessions))  # fmt: skip
        await stop.wait()
        # stopping joins QuickFIX's threads, whose callbacks post to this loop: it must keep running meanwhile
        await asyncio.to_thread(acceptor.stop)
        for session in list(bridge.sessions.values()):
            session.close()
        await asyncio.to_thread(bridge.close)


def main() -> int:
    started = start_gateway()
    if started is None:
        return 2
    settings, venue, cipher = started
    sys.setswitchinterval(SWITCH_INTERVAL)
    uvloop.run(serve(settings, venue, cipher))
    return 0


if __name__ == "__main__":
    sys.exit(main())
