"""Mutation strategies for differential evolution (Storn & Price 1997; names and formulas as scipy's).

Each strategy maps the population (P, D), the index of the best member, the member indices i (P,)
and distinct random member indices r (P, n) (all different from i) to mutant vectors (P, D):

    rand1            x[r0] + F (x[r1] - x[r2])
    best1            x[best] + F (x[r0] - x[r1])
    currenttobest1   x[i] + F (x[best] - x[i] + x[r0] - x[r1])
    randtobest1      x[r0] + F (x[best] - x[r0]) + F (x[r1] - x[r2])
    rand2            x[r0] + F (x[r1] + x[r2] - x[r3] - x[r4])
    best2            x[best] + F (x[r0] + x[r1] - x[r2] - x[r3])

The crossover is named by the suffix: ``bin`` (binomial) or ``exp`` (exponential), so the registry
holds e.g. ``rand1bin`` and ``rand1exp``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from ..errors import unknown


class Mutation(NamedTuple):
    fn: Callable[[torch.Tensor, int, torch.Tensor, torch.Tensor, float], torch.Tensor]
    n_random: int
    """How many distinct random members (besides i) one mutant needs."""


def _rand1(x, best, i, r, f):
    return x[r[:, 0]] + f * (x[r[:, 1]] - x[r[:, 2]])


def _best1(x, best, i, r, f):
    return x[best][None] + f * (x[r[:, 0]] - x[r[:, 1]])


def _currenttobest1(x, best, i, r, f):
    return x[i] + f * (x[best][None] - x[i] + x[r[:, 0]] - x[r[:, 1]])


def _randtobest1(x, best, i, r, f):
    base = x[r[:, 0]]
    return base + f * (x[best][None] - base) + f * (x[r[:, 1]] - x[r[:, 2]])


def _rand2(x, best, i, r, f):
    return x[r[:, 0]] + f * (x[r[:, 1]] + x[r[:, 2]] - x[r[:, 3]] - x[r[:, 4]])


def _best2(x, best, i, r, f):
    return x[best][None] + f * (x[r[:, 0]] + x[r[:, 1]] - x[r[:, 2]] - x[r[:, 3]])


MUTATIONS: dict[str, Mutation] = {
    "rand1": Mutation(_rand1, 3),
    "best1": Mutation(_best1, 2),
    "currenttobest1": Mutation(_currenttobest1, 2),
    "randtobest1": Mutation(_randtobest1, 3),
    "rand2": Mutation(_rand2, 5),
    "best2": Mutation(_best2, 4),
}
CROSSOVERS = ("bin", "exp")
STRATEGIES: tuple[str, ...] = tuple(m + c for m in MUTATIONS for c in CROSSOVERS)


def parse_strategy(name: str) -> tuple[Mutation, str]:
    """``'best1bin'`` -> (Mutation, ``'bin'``); an unknown name lists the valid ones."""
    if not isinstance(name, str) or name[-3:] not in CROSSOVERS or name[:-3] not in MUTATIONS:
        raise unknown("strategy", name, STRATEGIES)
    return MUTATIONS[name[:-3]], name[-3:]


def binomial_mask(u: torch.Tensor, j_rand: torch.Tensor, cr: float) -> torch.Tensor:
    """(P, D) bool: take the mutant where u < CR, and always at column ``j_rand`` (P,)."""
    mask = u < cr
    mask[torch.arange(u.shape[0], device=u.device), j_rand] = True
    return mask


def exponential_mask(u: torch.Tensor, start: torch.Tensor, cr: float) -> torch.Tensor:
    """(P, D) bool: L consecutive columns (cyclic) from ``start``, L = 1 + leading run of u[:, 1:] < CR.

    Same rule as scipy: the first column is always taken, then more while the next uniform draw < CR.
    """
    p, d = u.shape
    take = u < cr
    take[:, 0] = True
    length = torch.cumprod(take.to(torch.int64), dim=1).sum(dim=1)  # (P,)
    offset = (torch.arange(d, device=u.device)[None, :] - start[:, None]) % d
    return offset < length[:, None]


def crossover_mask(kind: str, u: torch.Tensor, pos: torch.Tensor, cr: float) -> torch.Tensor:
    return binomial_mask(u, pos, cr) if kind == "bin" else exponential_mask(u, pos, cr)
