"""``python -m persistence.stop_last [--signal INT] -- <server argv>``: run a local data server (Redis, PostgreSQL,
FerretDB) under the supervisor so that it stops after the processes that use it.

honcho stops every process of the Procfile at once and kills, after five seconds, any still running. Stopped at the
same moment as their clients, the servers vanish under the gateways, persisters and feeds while those finish their
last writes, which then fail with errors and tracebacks. The stop order a supervisor with dependencies would give
(systemd's After=) is emulated here: on the supervisor's SIGTERM (or a Ctrl-C) the server is told to stop only
``DELAY`` seconds later, which the other processes use to stop cleanly (each stops within about a second).
``--signal`` is what the server takes as its fast, clean stop (PostgreSQL: SIGINT; SIGTERM would be its "smart"
shutdown, which waits for every client to leave).
"""

from __future__ import annotations

import argparse
import ctypes
import signal
import subprocess
import sys
import threading

PR_SET_PDEATHSIG = 1  # linux/prctl.h
DELAY = 2.5  # s: the clients' time to stop (a gateway needs about 1.2 s); the server then has the rest of honcho's 5 s


def _die_with_parent(stop_signal: signal.Signals) -> None:
    """In the server's process: if this wrapper is killed (honcho's SIGKILL after its grace), the server gets its
    stop signal instead of living on, orphaned, on the venue's ports (prctl PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(stop_signal), 0, 0, 0)


def serve(argv: list[str], stop_signal: signal.Signals = signal.SIGTERM, delay: float = DELAY) -> int:
    """Run ``argv`` in the foreground; the first SIGTERM or SIGINT stops it ``delay`` s later. Returns its exit code."""
    # its own process group: honcho signals a process's whole group, and the server must not get that signal now;
    # preexec_fn is safe here, no thread has been started yet
    death = stop_signal
    server = subprocess.Popen(argv, start_new_session=True, preexec_fn=lambda: _die_with_parent(death))  # noqa: PLW1509
    asked = threading.Event()

    def stop_later() -> None:
        asked.wait()
        if server.poll() is None:
            server.send_signal(stop_signal)

    def on_signal(_signum: int, _frame: object) -> None:
        if not asked.is_set():
            threading.Timer(delay, asked.set).start()

    threading.Thread(target=stop_later, daemon=True).start()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    return server.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m persistence.stop_last", description=__doc__.split("\n\n")[0])
    parser.add_argument("--signal", default="TERM", help="the server's clean stop signal (default TERM)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the server's command line")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no server command")
    return serve(command, signal.Signals[f"SIG{args.signal.upper().removeprefix('SIG')}"])


if __name__ == "__main__":
    sys.exit(main())
