"""The counters all symbols of one engine share, and the stamps of the command being applied."""

from __future__ import annotations


class Context:
    __slots__ = ("in_seq", "next_order_id", "out_seq", "ts")

    def __init__(self) -> None:
        self.in_seq = 0
        self.out_seq = 0
        self.ts = 0
        self.next_order_id = 1
