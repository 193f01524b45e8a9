"""The contract of evostyle.de's population optimisers: one base (PopulationOptimizer) that DE, GDE3 and
random search compose with a variation and a survival; objects from outside the package plug in."""

import numpy as np
import pytest
import torch

from evostyle.de import (
    GDE3,
    ArchiveSurvival,
    DEVariation,
    DifferentialEvolution,
    GDE3Survival,
    GreedySurvival,
    PopulationOptimizer,
    RandomSearch,
    UniformSampling,
    differential_evolution,
    random_search,
)
from evostyle.errors import EvostyleError


def sphere(x):
    return (x ** 2).sum(1)


def two(x):
    return torch.stack([(x ** 2).sum(1), ((x - 1) ** 2).sum(1)], 1)


def _make(kind, func=None, bounds=((-2, 2),) * 3, **kw):
    if kind == "de":
        return DifferentialEvolution(func or sphere, list(bounds), **kw)
    if kind == "gde3":
        return GDE3(func or two, list(bounds), **kw)
    return RandomSearch(func or sphere, list(bounds), **kw)


KINDS = ("de", "gde3", "random")


def test_the_three_share_the_base_and_its_loop():
    for cls in (DifferentialEvolution, GDE3, RandomSearch):
        assert issubclass(cls, PopulationOptimizer)
        for name in ("solve", "step", "_evaluate", "init", "select", "__next__", "scale_out", "scale_in"):
            assert getattr(cls, name) is getattr(PopulationOptimizer, name), (cls.__name__, name)
    assert not issubclass(GDE3, DifferentialEvolution)
    de, g, rs = _make("de", seed=0), _make("gde3", seed=0), _make("random", seed=0)
    assert isinstance(de.variation, DEVariation) and isinstance(de.survival, GreedySurvival)
    assert isinstance(g.variation, DEVariation) and isinstance(g.survival, GDE3Survival)
    assert isinstance(rs.variation, UniformSampling) and isinstance(rs.survival, ArchiveSurvival)


def test_gde3_has_no_energies_and_no_tolerance():
    g = _make("gde3", seed=0, maxiter=2)
    g.solve()
    for name in ("energies", "tol", "atol"):
        assert not hasattr(g, name), name
    assert g.objectives is g.fitness and g.objectives.shape == (g.size, 2)
    seen = []
    _make("gde3", seed=0, maxiter=2, callback=lambda intermediate_result: seen.append(intermediate_result)).solve()
    assert [r.convergence for r in seen] == [0.0, 0.0]  # no stopping rule: nothing to converge to


@pytest.mark.parametrize("kind", KINDS)
def test_popsize_is_scipys_multiplier_in_all_three(kind):
    # 3 parameters, one fixed: P = popsize x 2 varying parameters
    bounds = [(-2, 2), (1.0, 1.0), (0, 3)]
    assert _make(kind, bounds=bounds, popsize=4, seed=0).population.shape == (8, 3)
    assert _make(kind, bounds=bounds, popsize=1, seed=0).size == 5  # never below 5
    init = np.zeros((7, 3)) + [0, 1, 1]
    assert _make(kind, bounds=bounds, popsize=50, init=init, seed=0).size == 7  # an array sets P


def test_random_search_spends_popsize_times_d_per_generation():
    r = random_search(sphere, [(-1, 1)] * 4, popsize=3, maxiter=2, seed=0)
    assert r.nfev == 3 * 4 * 3 and r.points.shape == (36, 4) and r["values"].shape == (36,)  # r.values is dict.values
    # the search's call: an init array, no popsize; generation 0 is that array, later ones uniform
    init = torch.rand(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    r = RandomSearch(sphere, [(0.0, 1.0)] * 4, maxiter=2, init=init, seed=3, device="cpu").solve()
    assert r.nfev == 18 and np.array_equal(r.points[:6], init.numpy())


@pytest.mark.parametrize("kind", KINDS)
def test_step_contract(kind):
    """step() evaluates the initial population if needed, runs one generation, adds 1 to nit and
    returns the (x, fun) that result() reports."""
    opt = _make(kind, seed=1, maxiter=3)
    p = opt.size
    x, fun = opt.step()
    assert opt.nit == 1 and opt.nfev == 2 * p
    res = opt.result()
    assert np.array_equal(x, res.x) and np.array_equal(fun, res.fun)
    assert [k for k in ("nfev", "nit", "success", "message", "elapsed") if k not in res] == []
    next(opt)
    next(opt)
    with pytest.raises(StopIteration):
        next(opt)
    # stepping maxiter times is the solve (no stopping rule fires with tol=0)
    kw = {"tol": 0} if kind == "de" else {}
    a = _make(kind, seed=1, maxiter=3, **kw)
    for _ in a:
        pass
    b = _make(kind, seed=1, maxiter=3, **kw).solve()
    assert np.array_equal(a.result().x, b.x) and np.array_equal(a.result().fun, b.fun) and a.nfev == b.nfev


@pytest.mark.parametrize("kind,bad,want", [
    ("de", lambda x: torch.zeros(x.shape[0], 2), r"to \(P,\)"),
    ("de", lambda x: torch.zeros(x.shape[0] - 1), r"to \(P,\)"),
    ("gde3", sphere, r"to \(P, M\)"),
    ("random", lambda x: torch.zeros(x.shape[0], 2, 1), r"to \(P,\) or \(P, M\)"),
])
def test_shapes_are_checked_with_one_clear_error(kind, bad, want):
    opt = _make(kind, func=bad, seed=0)
    with pytest.raises(EvostyleError, match=rf"^objective returned shape \([\d, ]+\) for {opt.size} "
                                            rf"candidates; it must map \(P, D\) {want}"):
        opt.solve()
    assert opt.nfev == 0


@pytest.mark.parametrize("kind", ["gde3", "random"])
def test_the_number_of_objectives_may_not_change(kind):
    calls = []

    def changing(x):
        calls.append(1)
        return two(x) if len(calls) == 1 else torch.stack([sphere(x)] * 3, 1)
    with pytest.raises(EvostyleError, match=r"\(P, 2\) as on its first call"):
        _make(kind, func=changing, seed=0).solve()


def test_a_column_of_values_is_a_scalar_objective_and_nan_is_the_worst():
    def column(x):
        out = sphere(x)[:, None].clone()
        out[0] = float("nan")
        return out
    a = differential_evolution(column, [(-2, 2)] * 2, seed=0, maxiter=5)
    b = differential_evolution(lambda x: column(x)[:, 0], [(-2, 2)] * 2, seed=0, maxiter=5)
    assert np.array_equal(a.population_energies, b.population_energies) and np.isfinite(a.fun)


# -- objects from outside the package -----------------------------------------------------------------
class GaussianAroundBest:
    """A variation the package does not have: P points around the best member, sigma 0.1, clipped."""
    min_population = 2
    label = "gaussian"

    def __call__(self, opt):
        noise = torch.randn(opt.size, opt.dim, generator=opt.gen, dtype=torch.float64).to(opt.device)
        return (opt.population[opt.best] + 0.1 * noise).clamp(0, 1)


class Truncation:
    """(mu + lambda) survival: the best P of parents and trials."""

    def __call__(self, population, fitness, trials, trial_fitness):
        x, f = torch.cat([population, trials]), torch.cat([fitness, trial_fitness])
        keep = torch.argsort(f, stable=True)[: population.shape[0]]
        return x[keep], f[keep]


def test_a_variation_and_a_survival_from_outside_plug_into_the_base():
    def run():
        return PopulationOptimizer(sphere, [(-2, 2)] * 3, variation=GaussianAroundBest(), survival=Truncation(),
                                   popsize=4, maxiter=30, seed=5).solve()
    res = run()
    assert res.nit == 30 and res.nfev == 31 * 12 and res.population.shape == (12, 3)
    assert res.fun < 0.05 and res.fun == res.population_fitness.min()
    assert np.array_equal(res.x, run().x)  # reproducible: every draw comes from the run's generator
    with pytest.raises(EvostyleError, match="population of 1 is too small for gaussian: it needs at least 2"):
        PopulationOptimizer(sphere, [(-2, 2)], variation=GaussianAroundBest(), survival=Truncation(),
                            init=np.zeros((1, 1)), seed=0)


def test_a_survival_from_outside_replaces_des():
    greedy = DifferentialEvolution(sphere, [(-2, 2)] * 3, seed=2, maxiter=10, tol=0)
    plus = DifferentialEvolution(sphere, [(-2, 2)] * 3, seed=2, maxiter=10, tol=0)
    plus.survival = Truncation()
    a, b = greedy.solve(), plus.solve()
    assert a.nfev == b.nfev and not np.array_equal(a.population, b.population)
    assert np.all(np.diff(b.population_energies) >= 0)  # Truncation's order: sorted by fitness


def test_de_variation_alone_makes_trials_in_the_unit_cube():
    opt = DifferentialEvolution(sphere, [(-2, 2)] * 3, seed=0, mutation=1.9)
    opt.init()
    trials = DEVariation("rand1exp", mutation=1.9, boundary="reflect")(opt)
    assert trials.shape == opt.population.shape and ((trials >= 0) & (trials <= 1)).all()
    with pytest.raises(EvostyleError, match="unknown boundary mode"):
        DEVariation(boundary="wrap")
