"""Comparing search methods the way multi-objective studies report them (as pymoo's and jMetal's
do): hypervolume normalised over the union of every method's points, medians and interquartile
ranges over seeds, and paired Wilcoxon signed-rank tests with Holm's correction.

Objectives are minimised, two of them: (fidelity, -diversity) as a run's front and hypervolume use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def normalisation(point_sets: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(ideal, nadir) of the union of ``point_sets`` (each (N, 2), minimised): the best and the worst
    value of each objective over every finite point of every set, so that methods are scaled alike."""
    pts = np.concatenate([np.asarray(p, float).reshape(-1, 2) for p in point_sets])
    pts = pts[np.isfinite(pts).all(1)]
    if not len(pts):
        raise ValueError("no finite points to normalise by")
    return pts.min(0), pts.max(0)


def normalised_hypervolume(points: np.ndarray, ideal: np.ndarray, nadir: np.ndarray,
                           margin: float = 0.1) -> float:
    """The hypervolume of ``points`` (N, 2) after scaling each objective to [0, 1] between ``ideal``
    and ``nadir``, against the reference point (1 + margin, 1 + margin): 0 for no point better than
    the nadir, (1 + margin)^2 for the ideal point itself. A degenerate objective (ideal == nadir)
    scales to 0. The margin lets the nadir's own extreme points count (pymoo's and jMetal's habit)."""
    from evostyle.de.pareto import hypervolume_2d
    pts = np.asarray(points, float).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(1)]
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    scaled = (pts - ideal) / span
    return float(hypervolume_2d(scaled, (1.0 + margin, 1.0 + margin))) if len(scaled) else 0.0


def median_iqr(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, first quartile, third quartile) of ``values`` (NaN-free), numpy's linear quantiles."""
    v = np.asarray(values, float)
    q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
    return float(med), float(q1), float(q3)


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values (Holm 1979): the i-th smallest of m is multiplied by
    (m - i), made monotone and capped at 1. Reject where the adjusted value is below alpha."""
    order = sorted(p_values, key=lambda k: p_values[k])
    m, running, out = len(order), 0.0, {}
    for i, key in enumerate(order):
        running = max(running, min(1.0, (m - i) * p_values[key]))
        out[key] = running
    return out


def paired_wilcoxon(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(median of a - b, two-sided p) of the Wilcoxon signed-rank test on paired samples (the same
    content/painting pair and seed for both methods); p is 1 where every difference is 0."""
    from scipy.stats import wilcoxon
    d = np.asarray(a, float) - np.asarray(b, float)
    if len(d) == 0 or np.all(d == 0):
        return 0.0 if len(d) else math.nan, 1.0
    return float(np.median(d)), float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def compare(scores: Mapping[str, Sequence[float]], against: str) -> dict[str, dict]:
    """Every method's scores (higher is better, paired by index: pair and seed) against one method's:
    {method: {median, q1, q3, n, median_difference, p, p_holm}}, the p-values Holm-corrected over
    the methods compared (the reference method has none)."""
    base = np.asarray(scores[against], float)
    out, raw = {}, {}
    for name, vals in scores.items():
        v = np.asarray(vals, float)
        if len(v) != len(base):
            raise ValueError(f"{name} has {len(v)} scores, {against} {len(base)}: they must be paired")
        med, q1, q3 = median_iqr(v)
        out[name] = {"median": med, "q1": q1, "q3": q3, "n": len(v)}
        if name != against:
            out[name]["median_difference"], raw[name] = paired_wilcoxon(v, base)
    for name, p in holm(raw).items():
        out[name]["p"], out[name]["p_holm"] = raw[name], p
    return out
