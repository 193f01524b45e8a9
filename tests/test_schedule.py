"""Hyperband's brackets as DEHB runs them (evostyle.de.schedule), on hand-set numbers."""

import pytest

from evostyle.de.schedule import Rung, Schedule


def test_the_textbook_case_eta_3_from_1_to_27():
    s = Schedule(1, 27, eta=3)
    assert s.levels == 4 and s.budgets == [1, 3, 9, 27]
    assert s.bracket(0) == [Rung(0, 1, 27), Rung(1, 3, 9), Rung(2, 9, 3), Rung(3, 27, 1)]
    # DEHB's n_0 = floor(S / (s + 1)) * eta^s (Hyperband's paper rounds up: 12 here)
    assert s.bracket(1) == [Rung(1, 3, 9), Rung(2, 9, 3), Rung(3, 27, 1)]
    assert s.bracket(2) == [Rung(2, 9, 6), Rung(3, 27, 2)]
    assert s.bracket(3) == [Rung(3, 27, 4)]
    assert s.bracket(4) == s.bracket(0)  # the next cycle repeats
    assert s.population_sizes() == [27, 9, 6, 4]
    assert s.cost(0) == 27 + 27 + 27 + 27 and s.continued_cost(0) == 27 + 9 * 2 + 3 * 6 + 1 * 18


def test_a_range_that_is_not_a_power_of_eta_keeps_the_top_and_stays_above_the_bottom():
    s = Schedule(3, 40, eta=3)  # 40 / 3 = 13.3: two steps of 3 and a bit
    assert s.levels == 3
    assert s.budgets == [4, 13, 40]  # 40/9 = 4.4 and 40/3 = 13.3, rounded to whole steps
    assert all(b >= 3 for b in s.budgets) and s.budgets[-1] == 40
    assert s.bracket(0) == [Rung(0, 4, 9), Rung(1, 13, 3), Rung(2, 40, 1)]
    assert s.bracket(1) == [Rung(1, 13, 3), Rung(2, 40, 1)]  # floor(3 / 2) * 3 = 3
    assert s.bracket(2) == [Rung(2, 40, 3)]
    real = Schedule(3, 40, eta=3, integer=False)
    assert real.budgets == pytest.approx([40 / 9, 40 / 3, 40])


def test_eta_2_and_edge_cases():
    s = Schedule(10, 100, eta=2)  # log2(10) = 3.32: levels 12.5, 25, 50, 100
    assert s.budgets == [12, 25, 50, 100]  # 12.5 rounds half to even
    assert [r.size for r in s.bracket(0)] == [8, 4, 2, 1]
    assert [r.size for r in s.bracket(1)] == [4, 2, 1]  # floor(4 / 3) * 2^2
    one = Schedule(5, 5)
    assert one.levels == 1 and one.bracket(7) == [Rung(0, 5, 1)]
    exact = Schedule(4, 36, eta=3)  # 36 / 4 = 9 exactly: the rounding must not lose a level
    assert exact.budgets == [4, 12, 36]
    with pytest.raises(ValueError, match="0 < min <= max"):
        Schedule(10, 5)
    with pytest.raises(ValueError, match="eta must be a number above 1"):
        Schedule(1, 10, eta=1)


def test_given_levels_keep_hyperbands_brackets_and_eta_sets_only_the_share_kept():
    """The levels of a coarse-to-fine ladder (the steps at which each scale ends) are not eta apart:
    the brackets are those of any three-level schedule, the budgets are the given ones."""
    s = Schedule.over([30, 60, 90], eta=3)
    assert s.levels == 3 and s.budgets == [30, 60, 90] and (s.min_budget, s.max_budget) == (30, 90)
    assert [[(r.level, r.size) for r in s.bracket(j)] for j in range(3)] == \
        [[(r.level, r.size) for r in Schedule(1, 9, eta=3).bracket(j)] for j in range(3)]
    assert s.bracket(0) == [Rung(0, 30, 9), Rung(1, 60, 3), Rung(2, 90, 1)]
    assert s.cost(0) == 9 * 30 + 3 * 60 + 90 and s.continued_cost(0) == 9 * 30 + 3 * 30 + 30
    assert [r.size for r in Schedule.over([13, 27], eta=2).bracket(0)] == [2, 1]  # floor(2 / 2) * 2
    for bad in ([30, 30, 90], [60, 30], []):
        with pytest.raises(ValueError, match="rise strictly|at least one budget level|0 < min <= max"):
            Schedule.over(bad)
    with pytest.raises(ValueError, match="eta must be a number above 1"):
        Schedule.over([1, 2], eta=0.5)
