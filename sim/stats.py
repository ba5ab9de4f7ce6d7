"""The simulator's counters and the one-line summary it prints every ~10 s and on exit."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sim.orders import Outcome


@dataclass
class Stats:
    sent: Counter[str] = field(default_factory=Counter)  # new orders and replaces sent, by protocol
    by_bot: Counter[str] = field(default_factory=Counter)  # ... by bot
    accepted: int = 0  # ... the venue took (placed)
    fills: int = 0  # fills of the bots' orders, from their accounts' order reports
    cancels: int = 0  # cancels sent (and cancels that found the order already gone: ``gone``)
    gone: int = 0  # replaces and cancels whose order had filled or been canceled meanwhile (a normal race)
    rejected: Counter[str] = field(default_factory=Counter)  # refusals by code ("-2010", "FIX 103=3", ...)
    http: Counter[int] = field(default_factory=Counter)  # REST answers by HTTP status
    errors: Counter[str] = field(default_factory=Counter)  # no answer (connection refused, timed out, ...)
    messages: dict[str, str] = field(default_factory=dict)  # the venue's message with the first refusal of each code

    def order(self, protocol: str, outcome: Outcome, bot: str = "") -> None:
        """A new order or a replace and what the venue answered."""
        self.sent[protocol] += 1
        self.by_bot[bot] += 1
        if outcome.ok:
            self.accepted += 1
        self._answer(outcome)

    def cancel(self, outcome: Outcome) -> None:
        self.cancels += 1
        self._answer(outcome)

    def _answer(self, outcome: Outcome) -> None:
        if outcome.http_status:
            self.http[outcome.http_status] += 1
        if outcome.gone:
            self.gone += 1
        elif outcome.transport:
            self.errors[outcome.transport] += 1
        elif not outcome.ok and outcome.code is not None:
            self.rejected[str(outcome.code)] += 1
            self.messages.setdefault(str(outcome.code), outcome.msg)

    def server_errors(self) -> int:
        return sum(n for status, n in self.http.items() if status >= 500)

    def line(self, elapsed: float) -> str:
        by = ", ".join(f"{p} {n}" for p, n in sorted(self.sent.items()))
        rejected = " ".join(f"{code}:{n}" for code, n in sorted(self.rejected.items())) or "none"
        errors = " ".join(f"{why}:{n}" for why, n in sorted(self.errors.items())) or "none"
        return (f"sim {elapsed:.0f}s: sent {sum(self.sent.values())} ({by or 'none'}), accepted {self.accepted}, "
                f"fills {self.fills}, cancels {self.cancels}, gone {self.gone}, rejected {rejected}, "
                f"5xx {self.server_errors()}, errors {errors}")  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": dict(self.sent),
            "by_bot": dict(self.by_bot),
            "accepted": self.accepted,
            "fills": self.fills,
            "cancels": self.cancels,
            "gone": self.gone,
            "rejected": dict(self.rejected),
            "messages": dict(self.messages),
            "http": {str(k): v for k, v in self.http.items()},
            "errors": dict(self.errors),
        }
