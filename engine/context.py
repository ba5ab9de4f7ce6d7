"""The counters all symbols of one engine share, and the stamps of the command being applied.

There is no order id counter: an order's id is the in_seq of the command that created it (engine.matching), so
the sequencer's acknowledgement already tells a gateway the id the order will have.
"""

from __future__ import annotations


class Context:
    __slots__ = ("in_seq", "out_seq", "ts")

    def __init__(self) -> None:
        self.in_seq = 0
        self.out_seq = 0
        self.ts = 0
