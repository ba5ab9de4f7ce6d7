"""Each symbol's fair value: a random walk of the log price with occasional jumps, on the symbol's tick.

The market makers quote around it and move their quotes as it moves; the other bots never see it (they only see
the trades it causes). A step is a draw from the walk's own generator, so the same seed gives the same path
whatever the timing: only how often ``step`` is called is paced by the clock.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal

from sim.grid import SymbolRules


def seeded(seed: int, *names: str) -> random.Random:
    """A generator of its own for one part of the simulation: the same seed and names give the same draws, and
    adding a bot or a symbol leaves the others' draws unchanged (str seeds hash the same in every process)."""
    return random.Random("/".join([str(seed), *names]))


@dataclass(frozen=True, slots=True)
class WalkParams:
    step_bps: float = 3.0  # standard deviation of one step's move, in basis points
    jump_chance: float = 0.004  # per step: about one jump in four minutes at a step a second
    jump_bps: tuple[float, float] = (40.0, 200.0)  # a jump's size, up or down; far inside the venue's price band
    # A weak pull of the log price back towards its start: without it a walk left running for days wanders far from
    # the prices the accounts' funding was sized for (it barely shows over minutes: a half-life of ~700 steps)
    reversion: float = 0.001


class FairValue:
    def __init__(
        self, rules: SymbolRules, start: Decimal, rng: random.Random, params: WalkParams | None = None
    ) -> None:
        if start <= 0:
            raise ValueError(f"{rules.symbol}: a fair value must start above zero, not {start}")
        self.rules = rules
        self.params = params or WalkParams()
        self._rng = rng
        self._anchor = math.log(start)
        self._log = self._anchor
        self.price = rules.nearest_price(start)
        self.steps = 0

    def step(self) -> Decimal:
        """The next fair value (on the tick): every step draws the same number of values whatever happens, so
        the path depends on the seed alone."""
        p, rng = self.params, self._rng
        move = rng.gauss(0.0, p.step_bps / 10_000)
        jump = rng.random() < p.jump_chance
        size = rng.uniform(*p.jump_bps) / 10_000
        up = rng.random() < 0.5
        if jump:
            move += size if up else -size
        self._log += move - p.reversion * (self._log - self._anchor)
        # Decimal(float) is the float's exact value: deterministic, and the grid rounding makes it a valid price
        self.price = self.rules.nearest_price(Decimal(math.exp(self._log)))
        self.steps += 1
        return self.price


def path(rules: SymbolRules, start: Decimal, seed: int, steps: int, params: WalkParams | None = None) -> list[Decimal]:
    """The first ``steps`` fair values of ``rules.symbol`` for ``seed`` (what the simulator's walk gives)."""
    walk = FairValue(rules, start, seeded(seed, "fair", rules.symbol), params)
    return [walk.step() for _ in range(steps)]
