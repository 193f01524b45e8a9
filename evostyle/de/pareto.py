"""Pareto dominance, non-dominated sorting, crowding distance and the 2-D hypervolume.

Every objective is minimised. Points are rows of an (N, M) array; a row with a NaN or inf entry counts
as +inf in every objective (dominated by every finite point). References: Deb et al. 2002 (NSGA-II:
fast non-dominated sorting, crowding distance); Kukkonen & Deb 2006 (pruning one member at a time,
recomputing the crowding distance); Zitzler & Thiele 1998 (hypervolume).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:  # annotations only
    from evostyle.types import ArrayLike


def _as_array(points) -> np.ndarray:
    """(N, M) float64 numpy array with non-finite rows set to +inf."""
    f = np.array(points.detach().cpu().numpy() if torch.is_tensor(points) else points, dtype=np.float64, copy=True)
    if f.ndim != 2:
        raise ValueError(f"points must be (N, M), got shape {f.shape}")
    f[~np.isfinite(f).all(axis=1)] = np.inf
    return f


def dominates(a: ArrayLike, b: ArrayLike) -> bool:
    """True if a Pareto-dominates b: no worse in every objective and better in at least one."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return bool((a <= b).all() and (a < b).any())


def weakly_dominates(a: ArrayLike, b: ArrayLike) -> bool:
    """True if a is no worse than b in every objective (a equal to b included)."""
    return bool((np.asarray(a, dtype=np.float64) <= np.asarray(b, dtype=np.float64)).all())


def _domination_matrix(f: np.ndarray) -> np.ndarray:
    """(N, N) bool: entry [i, j] is True when row i dominates row j."""
    le = (f[:, None, :] <= f[None, :, :]).all(axis=2)
    lt = (f[:, None, :] < f[None, :, :]).any(axis=2)
    return le & lt


def non_dominated(points: ArrayLike) -> np.ndarray:
    """(N,) bool mask of the rows no other row dominates (non-finite rows excluded unless all are)."""
    f = _as_array(points)
    if len(f) == 0:
        return np.zeros(0, dtype=bool)
    mask = ~_domination_matrix(f).any(axis=0)
    finite = np.isfinite(f).all(axis=1)
    return mask & finite if finite.any() else mask


def non_dominated_sort(points: ArrayLike) -> list[np.ndarray]:
    """Fronts of (N, M) points, best first: a list of index arrays (ascending) that partition 0..N-1.
    Front 0 holds the non-dominated rows, front 1 those dominated only by front 0, and so on."""
    f = _as_array(points)
    dom = _domination_matrix(f)
    count = dom.sum(axis=0)  # how many rows dominate each row
    fronts, left = [], np.ones(len(f), dtype=bool)
    while left.any():
        front = np.flatnonzero(left & (count == 0))
        fronts.append(front)
        left[front] = False
        count = count - dom[front].sum(axis=0)
        count[~left] = -1
    return fronts


def crowding_distance(points: ArrayLike) -> np.ndarray:
    """(N,) crowding distance of (N, M) points within their set (NSGA-II): per objective, the gap
    between each point's two neighbours in sorted order divided by the objective's range, summed;
    the extreme points of every objective get +inf. Non-finite rows get 0."""
    f = _as_array(points)
    n, m = f.shape
    d = np.zeros(n)
    finite = np.flatnonzero(np.isfinite(f).all(axis=1))
    if len(finite) <= 2:
        d[finite] = np.inf
        return d
    g = f[finite]
    for j in range(m):
        order = np.argsort(g[:, j], kind="stable")
        col = g[order, j]
        span = col[-1] - col[0]
        dj = np.zeros(len(g))
        dj[order[0]] = dj[order[-1]] = np.inf
        if span > 0:
            dj[order[1:-1]] += (col[2:] - col[:-2]) / span
        d[finite] += dj
    return d


def prune(points: ArrayLike, keep: int) -> np.ndarray:
    """Indices (ascending) of ``keep`` rows chosen by non-dominated sorting and crowding distance.

    Whole fronts are taken best first; from the front that does not fit, the member with the smallest
    crowding distance is removed one at a time, with the distances recomputed after each removal
    (Kukkonen & Deb 2006), ties going to the later index. Deterministic for the same points.
    """
    f = _as_array(points)
    if keep >= len(f):
        return np.arange(len(f))
    chosen: list[int] = []
    for front in non_dominated_sort(f):
        if len(chosen) + len(front) <= keep:
            chosen += front.tolist()
            if len(chosen) == keep:
                break
            continue
        members = front.tolist()
        while len(chosen) + len(members) > keep:
            cd = crowding_distance(f[members])
            worst = max(range(len(members)), key=lambda i: (-cd[i], i))
            members.pop(worst)
        chosen += members
        break
    return np.array(sorted(chosen), dtype=np.int64)


def hypervolume_2d(points: ArrayLike, reference: ArrayLike) -> float:
    """Area dominated by 2-objective points (minimised) and bounded by ``reference`` (r1, r2).

    Only points strictly better than the reference in both objectives count; the result is the area
    of the union of the boxes [f1, r1] x [f2, r2], 0 for no such point.
    """
    f = _as_array(points)
    r = np.asarray(reference, dtype=np.float64).reshape(-1)
    if f.shape[1] != 2 or r.shape != (2,):
        raise ValueError("hypervolume_2d needs (N, 2) points and a reference of 2 numbers")
    if not np.isfinite(r).all():
        raise ValueError(f"the reference point must be finite, got {r.tolist()}")
    f = f[(f < r).all(axis=1)]
    if len(f) == 0:
        return 0.0
    f = f[np.lexsort((f[:, 1], f[:, 0]))]  # by f1, then f2
    before = np.concatenate([[r[1]], np.minimum.accumulate(f[:-1, 1])])
    front = f[f[:, 1] < before]  # f1 ascending, f2 strictly descending
    widths = np.append(front[1:, 0], r[0]) - front[:, 0]
    return float((widths * (r[1] - front[:, 1])).sum())


def front_and_hypervolume(points: ArrayLike, reference: ArrayLike) -> tuple[np.ndarray, float]:
    """(indices of the non-dominated rows, their 2-D hypervolume against ``reference``)."""
    idx = np.flatnonzero(non_dominated(points))
    return idx, hypervolume_2d(_as_array(points)[idx], reference) if len(idx) else 0.0
