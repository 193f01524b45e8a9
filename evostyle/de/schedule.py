"""Hyperband's brackets and rungs as DEHB runs them (Li et al. 2018, "Hyperband", JMLR; Awad, Mallik &
Hutter 2021, "DEHB", IJCAI, section 4 and their reference implementation's schedule).

The fidelity is a budget b in [b_min, b_max] (for style transfer: inner steps). With eta > 1 there are
S = floor(log_eta(b_max / b_min) + 1e-9) + 1 budget levels, b_max * eta^-(S-1), ..., b_max / eta,
b_max: the top is always b_max and the lowest at least b_min (when b_max / b_min is not a power of eta
the levels do not reach down to b_min exactly). Bracket j of a cycle of S brackets starts at level
j (s = S - 1 - j rungs of successive halving above it) with n_0 = floor(S / (s + 1)) * eta^s
configurations and keeps n_i = max(floor(n_0 / eta^i), 1) of them at rung i. Bracket j of every later
cycle repeats the schedule of bracket j.

The levels can also be given (:meth:`Schedule.over`): a fidelity whose natural levels are not eta apart
(the scales of a coarse-to-fine transfer, each ending at a step count). The brackets depend only on S
and eta, so they are the same; eta then sets only the share kept at each rung.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rung:
    """One rung of a bracket: ``size`` configurations at budget ``budget`` (budget level ``level``,
    0 the lowest)."""

    level: int
    budget: float
    size: int


@dataclass(frozen=True)
class Schedule:
    """The budget levels and brackets for ``min_budget``, ``max_budget`` and ``eta``.

    Args:
        min_budget / max_budget: the fidelity's range, 0 < min_budget <= max_budget.
        eta: the factor between levels and the share kept at each rung (1 / eta), > 1.
        integer: round budgets to whole numbers (transfer steps), each at least 1.
        given: the budget levels themselves, lowest first (:meth:`over`); empty: eta apart, as above.
    """

    min_budget: float
    max_budget: float
    eta: float = 3.0
    integer: bool = True
    given: tuple[float, ...] = ()

    def __post_init__(self):
        if not (math.isfinite(self.min_budget) and math.isfinite(self.max_budget)) or not (
                0 < self.min_budget <= self.max_budget):
            raise ValueError(f"budgets need 0 < min <= max, got min {self.min_budget}, max {self.max_budget}")
        if not (math.isfinite(self.eta) and self.eta > 1):
            raise ValueError(f"eta must be a number above 1, got {self.eta}")
        g = self.given
        if g and (any(b <= a for a, b in zip(g, g[1:])) or (g[0], g[-1]) != (self.min_budget, self.max_budget)):
            raise ValueError(f"given budget levels must rise strictly from min to max, got {list(g)}")

    @classmethod
    def over(cls, budgets: Sequence[float], eta: float = 3.0) -> Schedule:
        """The schedule over the budget levels ``budgets`` (rising, each > 0), eta the factor between rung
        sizes."""
        given = tuple(float(b) for b in budgets)
        if not given:
            raise ValueError("a schedule needs at least one budget level")
        return cls(given[0], given[-1], eta, False, given)

    @property
    def levels(self) -> int:
        """S, the number of budget levels (and of brackets in a cycle)."""
        if self.given:
            return len(self.given)
        return int(math.floor(math.log(self.max_budget / self.min_budget) / math.log(self.eta) + 1e-9)) + 1

    @property
    def budgets(self) -> list[float]:
        """The S budgets, lowest first; the last is ``max_budget``."""
        if self.given:
            return list(self.given)
        s = self.levels
        raw = [self.max_budget * self.eta ** -(s - 1 - i) for i in range(s)]
        if not self.integer:
            return raw
        return [float(max(1, round(b))) for b in raw]

    def bracket(self, index: int) -> list[Rung]:
        """The rungs of bracket ``index`` (0, 1, ...; bracket index % S of a cycle), lowest budget first."""
        if index < 0:
            raise ValueError(f"bracket index must be >= 0, got {index}")
        levels = self.levels
        j = index % levels
        s = levels - 1 - j
        n0 = math.floor(levels / (s + 1)) * self.eta ** s
        budgets = self.budgets
        return [Rung(j + i, budgets[j + i], max(int(math.floor(n0 * self.eta ** -i + 1e-9)), 1))
                for i in range(s + 1)]

    def cycle(self) -> list[list[Rung]]:
        """One full cycle: brackets 0 .. S-1."""
        return [self.bracket(j) for j in range(self.levels)]

    def population_sizes(self) -> list[int]:
        """DEHB's subpopulation size at each level: the most configurations any bracket runs there."""
        sizes = [0] * self.levels
        for rungs in self.cycle():
            for r in rungs:
                sizes[r.level] = max(sizes[r.level], r.size)
        return sizes

    def cost(self, index: int) -> float:
        """Budget spent by bracket ``index`` run from scratch (every rung's configurations times its
        budget); a promoted configuration that continues instead of restarting spends only the
        difference to its new budget (:meth:`continued_cost`)."""
        return float(sum(r.size * r.budget for r in self.bracket(index)))

    def continued_cost(self, index: int) -> float:
        """Budget spent by bracket ``index`` when promoted configurations continue: the first rung's
        from scratch, each later rung's the step up from the rung below."""
        rungs = self.bracket(index)
        return float(rungs[0].size * rungs[0].budget + sum(
            r.size * (r.budget - lower.budget) for lower, r in zip(rungs, rungs[1:])))
