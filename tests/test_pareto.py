"""Pareto utilities, GDE3 and random search, on hand-set populations and small test problems."""

import math

import numpy as np
import pytest
import torch

from evostyle.de import (
    GDE3,
    crowding_distance,
    dominates,
    gde3,
    hypervolume_2d,
    non_dominated,
    non_dominated_sort,
    prune,
    random_search,
    weakly_dominates,
)
from evostyle.errors import EvostyleError


def test_dominance():
    assert dominates([1, 2], [2, 2]) and not dominates([2, 2], [2, 2]) and not dominates([1, 3], [2, 2])
    assert weakly_dominates([2, 2], [2, 2]) and weakly_dominates([1, 2], [2, 2])
    assert not weakly_dominates([1, 3], [2, 2])


def test_non_dominated_sort_by_hand():
    f = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [5, 5], [2, 3], [np.nan, 0.0]])
    fronts = non_dominated_sort(f)
    # (1,5), (2,3), (4,1) and the duplicate (2,3) are mutually non-dominated; (3,4) is dominated by (2,3);
    # (5,5) by (3,4) too; the NaN row counts as +inf and comes last
    assert [fr.tolist() for fr in fronts] == [[0, 1, 3, 5], [2], [4], [6]]
    assert non_dominated(f).tolist() == [True, True, False, True, False, True, False]


def test_crowding_distance_by_hand():
    f = np.array([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]])
    d = crowding_distance(f)
    # interior points: (f1 gap of neighbours)/4 + (f2 gap)/4 -> (3-0)/4 + (4-1)/4 = 1.5; (4-1)/4 + (2-0)/4 = 1.25
    assert math.isinf(d[0]) and math.isinf(d[3])
    assert d[1] == pytest.approx(1.5) and d[2] == pytest.approx(1.25)


def test_prune_removes_the_most_crowded_of_the_last_front_one_at_a_time():
    f = np.array([[0.0, 4.0], [1.0, 2.9], [1.1, 2.8], [3.0, 1.0], [4.0, 0.0], [5.0, 5.0]])
    assert prune(f, 6).tolist() == [0, 1, 2, 3, 4, 5]
    # the front is rows 0-4; (5, 5) goes first, then the more crowded of the close pair 1 / 2
    assert prune(f, 5).tolist() == [0, 1, 2, 3, 4]
    # crowding of rows 1, 2, 3 on the front: 0.575, 0.975, 1.425 (f1 and f2 ranges are 4): row 1 goes
    assert prune(f, 4).tolist() == [0, 2, 3, 4]
    assert prune(f, 2).tolist() == [0, 4]  # the extremes have infinite crowding distance


def test_hypervolume_of_hand_made_fronts():
    front = [[1, 3], [2, 2], [3, 1]]
    assert hypervolume_2d(front, [4, 4]) == pytest.approx(1 * 1 + 1 * 2 + 1 * 3)
    # a dominated point, a point outside the reference and a NaN add nothing
    more = front + [[3, 3], [5, 0], [np.nan, 1]]
    assert hypervolume_2d(more, [4, 4]) == pytest.approx(6)
    assert hypervolume_2d([[1, 1]], [2, 3]) == pytest.approx(2)
    assert hypervolume_2d([[1, 1], [1, 1]], [2, 3]) == pytest.approx(2)
    assert hypervolume_2d(np.zeros((0, 2)), [1, 1]) == 0.0
    with pytest.raises(ValueError, match="finite"):
        hypervolume_2d(front, [np.inf, 1])


def _gde3_with(objectives, trials_objectives, points=None):
    """A GDE3 whose population and objectives are set by hand, and its selection applied."""
    n = len(objectives)
    solver = GDE3(lambda x: torch.zeros(x.shape[0], 2), [(0, 1)], popsize=1, init=np.zeros((max(n, 5), 1)), seed=0)
    pop = torch.arange(n, dtype=torch.float64)[:, None] / 10 if points is None else points
    solver.population = pop
    solver.objectives = torch.tensor(objectives, dtype=torch.float64)
    trial = pop + 0.05
    solver.select(trial, torch.tensor(trials_objectives, dtype=torch.float64))
    return solver, pop, trial


def test_gde3_selection_rules():
    parents = [[1.0, 5.0], [3.0, 3.0], [5.0, 1.0]]
    # trial 0 equals its parent (weakly dominates: replaces it); trial 1 is dominated by its parent
    # (dropped); trial 2 is incomparable with its parent (both stay), then the 4 are cut back to 3
    trials = [[1.0, 5.0], [3.5, 3.5], [4.0, 1.5]]
    solver, pop, trial = _gde3_with(parents, trials)
    assert solver.population.shape == (3, 1) and solver.objectives.shape == (3, 2)
    assert torch.equal(solver.population[0], trial[0])  # replaced
    assert trial[1].item() not in solver.population.flatten().tolist()  # dropped
    # the four candidates (1,5), (3,3), (5,1), (4,1.5) are one front: the extremes stay, and of the two
    # interior points the more crowded one, (4, 1.5) between (3, 3) and (5, 1), is removed
    assert solver.objectives.tolist() == [[1.0, 5.0], [3.0, 3.0], [5.0, 1.0]]


def test_gde3_keeps_a_trial_that_dominates_and_prunes_by_rank():
    parents = [[2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]
    trials = [[1.0, 1.0], [2.5, 3.5], [4.5, 3.9]]  # dominates; incomparable; incomparable
    solver, _, trial = _gde3_with(parents, trials)
    objs = solver.objectives.tolist()
    assert [1.0, 1.0] in objs and [2.0, 2.0] not in objs  # replaced
    # 5 members after selection: (1,1) | (3,3), (2.5,3.5) | (4,4), (4.5,3.9): two fronts fit in 3
    assert sorted(objs) == [[1.0, 1.0], [2.5, 3.5], [3.0, 3.0]]


def _two_objectives(x):
    """A 2-objective problem whose Pareto set is x0 in [0, 1] with the other coordinates at 0.5."""
    rest = ((x[:, 1:] - 0.5) ** 2).sum(1)
    return torch.stack([x[:, 0] ** 2 + rest, (x[:, 0] - 1) ** 2 + rest], 1)


def test_gde3_front_is_mutually_non_dominated_reproducible_and_good():
    res = gde3(_two_objectives, [(-2, 2)] * 3, popsize=8, maxiter=60, seed=3)
    f = res.fun
    for i in range(len(f)):
        for j in range(len(f)):
            assert not dominates(f[i], f[j])
    again = gde3(_two_objectives, [(-2, 2)] * 3, popsize=8, maxiter=60, seed=3)
    assert np.array_equal(again.x, res.x) and np.array_equal(again.fun, res.fun)
    # the true front is f2 = (1 - sqrt(f1))^2 on [0, 1]: area 1 - 1/6 against the reference (1, 1)
    assert hypervolume_2d(f, [1, 1]) > 0.8 * (1 - 1 / 6)
    assert res.nfev == 24 * 61 and res.population.shape == (24, 3) and res.population_objectives.shape == (24, 2)


def test_gde3_beats_random_search_at_equal_budget():
    g = gde3(_two_objectives, [(-2, 2)] * 4, popsize=5, maxiter=40, seed=1)
    r = random_search(_two_objectives, [(-2, 2)] * 4, popsize=5, maxiter=40, seed=1)  # P = 5 x D 4, as GDE3
    assert r.nfev == g.nfev == 20 * 41
    assert hypervolume_2d(g.fun, [1, 1]) > hypervolume_2d(r.fun, [1, 1])


def test_gde3_refuses_best_strategies_and_wrong_shapes():
    with pytest.raises(EvostyleError, match="GDE3 takes strategy"):
        GDE3(_two_objectives, [(0, 1)] * 2, strategy="best1bin")
    with pytest.raises(EvostyleError, match="must map \\(P, D\\) to \\(P, M\\)"):
        gde3(lambda x: x.sum(1), [(0, 1)] * 2, maxiter=1)


def test_random_search_scalar_and_its_first_generation():
    init = np.random.default_rng(0).random((6, 2))
    r = random_search(lambda x: (x ** 2).sum(1), [(-1, 1)] * 2, init=init * 2 - 1, maxiter=3, seed=0)
    assert r.nfev == 24 and r.points.shape == (24, 2) and r.nit == 3
    assert np.allclose(r.points[:6], init * 2 - 1)  # generation 0 is the given population
    assert r.fun == pytest.approx(float((r.points ** 2).sum(1).min()))
    assert ((r.points >= -1) & (r.points <= 1)).all()
