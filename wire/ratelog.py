"""Logging for bad input: one line per event, but never a flood. A burst of garbage is summarised."""

from __future__ import annotations

import logging
import time


class RateLimitedLog:
    """Logs at most ``per_second`` lines a second; the lines it holds back are counted in the next one."""

    __slots__ = ("_held", "_log", "_per_second", "_sent", "_window")

    def __init__(self, log: logging.Logger, per_second: int = 5) -> None:
        self._log = log
        self._per_second = per_second
        self._window = 0
        self._sent = 0
        self._held = 0

    def warning(self, msg: str, *args: object) -> None:
        now = int(time.monotonic())
        if now != self._window:
            self._window, self._sent = now, 0
        if self._sent >= self._per_second:
            self._held += 1
            return
        self._sent += 1
        if self._held:
            self._log.warning(msg + " (and %d more held back)", *args, self._held)
            self._held = 0
        else:
            self._log.warning(msg, *args)
