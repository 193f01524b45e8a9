"""The comparison statistics on hand-made data: normalised hypervolume, median and IQR, Holm's
correction and the paired Wilcoxon test."""

import math

import numpy as np
import pytest

from evostyle.report.stats import compare, holm, median_iqr, normalisation, normalised_hypervolume, paired_wilcoxon


def test_the_hypervolume_is_normalised_over_the_union_of_the_methods():
    a = np.array([[0.0, 1.0], [1.0, 0.0]])     # the two extremes
    b = np.array([[0.5, 0.5], [2.0, 2.0]])     # a middle point and the nadir
    ideal, nadir = normalisation([a, b])
    assert ideal.tolist() == [0.0, 0.0] and nadir.tolist() == [2.0, 2.0]
    # a, scaled: (0, 0.5) and (0.5, 0); reference (1.1, 1.1): 1.1 * 0.6 + 0.6 * 1.1 - 0.6 * 0.6
    assert normalised_hypervolume(a, ideal, nadir) == pytest.approx(1.1 * 0.6 * 2 - 0.36)
    # b: (0.25, 0.25) dominates (0.85)^2; the nadir (1, 1) adds nothing it does not
    assert normalised_hypervolume(b, ideal, nadir) == pytest.approx(0.85 ** 2)
    assert normalised_hypervolume(np.array([[2.0, 2.0]]), ideal, nadir) == pytest.approx(0.1 ** 2)
    assert normalised_hypervolume(np.array([[0.0, 0.0]]), ideal, nadir) == pytest.approx(1.1 ** 2)
    assert normalised_hypervolume(np.zeros((0, 2)), ideal, nadir) == 0.0
    # scaling each objective by a constant does not change it
    s = np.array([10.0, 0.1])
    i2, n2 = normalisation([a * s, b * s])
    assert normalised_hypervolume(a * s, i2, n2) == pytest.approx(normalised_hypervolume(a, ideal, nadir))
    with pytest.raises(ValueError, match="no finite points"):
        normalisation([np.array([[math.inf, 0.0]])])


def test_median_iqr_and_holm():
    assert median_iqr([1, 2, 3, 4, 5]) == (3.0, 2.0, 4.0)
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adjusted == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})  # 3 x 0.01, 2 x 0.03, max(1 x 0.04, 0.06)
    assert holm({"a": 0.6, "b": 0.9}) == {"a": 1.0, "b": 1.0}


def test_the_paired_test_sees_a_consistent_small_gain_and_not_noise():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.8, 15)            # 3 pairs x 5 seeds of one method
    better = base + 0.02 + rng.normal(0, 0.002, 15)  # always a little better
    noise = base + rng.normal(0, 0.05, 15)      # as good, differently
    diff, p = paired_wilcoxon(better, base)
    assert diff == pytest.approx(0.02, abs=0.002) and p < 0.001
    assert paired_wilcoxon(noise, base)[1] > 0.05
    assert paired_wilcoxon(base, base) == (0.0, 1.0)
    table = compare({"de": better, "random": base, "tpe": noise}, against="random")
    assert "p" not in table["random"] and table["de"]["p_holm"] < 0.01 and table["tpe"]["p_holm"] > 0.05
    assert table["de"]["p_holm"] >= table["de"]["p"] and table["de"]["n"] == 15
    with pytest.raises(ValueError, match="paired"):
        compare({"de": better[:3], "random": base}, against="random")
