import math

import numpy as np
import pytest
import torch

from evostyle.de import STRATEGIES, DifferentialEvolution, differential_evolution, scipy_differential_evolution
from evostyle.de.strategies import MUTATIONS, exponential_mask, parse_strategy
from evostyle.errors import EvostyleError


def sphere(x):
    return (x ** 2).sum(1)


def test_registry_has_all_strategies():
    for name in ("rand1bin", "best1bin", "currenttobest1bin", "randtobest1bin", "rand2bin", "best2bin",
                 "rand1exp", "best1exp", "currenttobest1exp", "randtobest1exp", "rand2exp", "best2exp"):
        assert name in STRATEGIES


def test_strategy_formulas_on_hand_set_population():
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 5.0], [10.0, 20.0], [7.0, 1.0], [2.0, 9.0]], dtype=torch.float64)
    best, f = 1, 0.5
    i = torch.tensor([0])
    r = torch.tensor([[2, 3, 4, 5, 1]])
    x0, xb, r0, r1, r2, r3, r4 = x[0], x[1], x[2], x[3], x[4], x[5], x[1]
    expect = {
        "rand1": r0 + f * (r1 - r2),
        "best1": xb + f * (r0 - r1),
        "currenttobest1": x0 + f * (xb - x0 + r0 - r1),
        "randtobest1": r0 + f * (xb - r0) + f * (r1 - r2),
        "rand2": r0 + f * (r1 + r2 - r3 - r4),
        "best2": xb + f * (r0 + r1 - r2 - r3),
    }
    for name, m in MUTATIONS.items():
        got = m.fn(x, best, i, r[:, : m.n_random], f)[0]
        assert torch.allclose(got, expect[name]), name


def test_exponential_crossover_matches_scipy_rule():
    u = torch.tensor([[0.9, 0.1, 0.2, 0.95, 0.1]])  # CR 0.5: take col 0, then 1, 2; stop at 3
    mask = exponential_mask(u, torch.tensor([3]), 0.5)
    assert mask.tolist() == [[True, False, False, True, True]]  # 3 columns from 3, cyclic: 3, 4, 0


def test_same_seed_same_result_and_different_seed_differs():
    a = differential_evolution(sphere, [(-5, 5)] * 3, seed=3, maxiter=20)
    b = differential_evolution(sphere, [(-5, 5)] * 3, seed=3, maxiter=20)
    c = differential_evolution(sphere, [(-5, 5)] * 3, seed=4, maxiter=20)
    assert np.array_equal(a.population, b.population) and a.fun == b.fun
    assert not np.array_equal(a.population, c.population)


def test_batched_and_looped_evaluation_agree():
    def looped(x):
        return torch.stack([sphere(row[None])[0] for row in x])
    for s in ("best1bin", "rand2exp"):
        a = differential_evolution(sphere, [(-5, 5)] * 4, seed=1, maxiter=15, strategy=s)
        b = differential_evolution(looped, [(-5, 5)] * 4, seed=1, maxiter=15, strategy=s)
        assert np.array_equal(a.population, b.population) and a.nfev == b.nfev


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("boundary", ["resample", "reflect"])
def test_bounds_always_respected(strategy, boundary):
    seen = []
    lo = torch.tensor([-1.0, 2.0, -10.0], dtype=torch.float64)
    hi = torch.tensor([1.0, 3.0, -9.0], dtype=torch.float64)

    def f(x):
        seen.append(x.clone())
        return -(x ** 2).sum(1)  # pushes towards the corners
    res = differential_evolution(f, list(zip(lo.tolist(), hi.tolist())), seed=0, maxiter=10, strategy=strategy,
                                 mutation=1.9, boundary=boundary, popsize=5)
    allx = torch.cat(seen)
    assert (allx >= lo).all() and (allx <= hi).all()
    assert res.population.shape == (15, 3) and res.population_energies.shape == (15,)


def test_converges_on_rosenbrock_and_result_fields():
    def rosen(x):
        return (100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1 - x[:, :-1]) ** 2).sum(1)
    res = differential_evolution(rosen, [(-2, 2)] * 2, seed=0, maxiter=1000, tol=1e-8)
    assert res.success and res.fun < 1e-6
    assert np.allclose(res.x, [1, 1], atol=1e-3)
    for key in ("x", "fun", "nfev", "nit", "success", "message", "population", "population_energies"):
        assert key in res
    assert res.nfev == (res.nit + 1) * 30  # P = popsize 15 x D 2


def test_callback_sees_intermediate_result_and_can_stop():
    calls = []

    def cb(intermediate_result):  # scipy's name, which receives the OptimizeResult
        r = intermediate_result
        calls.append((r.nit, r.fun, r.message, r.success))
        return r.nit >= 3
    res = differential_evolution(sphere, [(-5, 5)] * 2, seed=0, maxiter=100, tol=0, callback=cb)
    assert res.nit == 3 and len(calls) == 3 and not res.success
    assert "callback" in res.message
    assert all(m == "in progress" and ok is True for _, _, m, ok in calls)  # as scipy reports mid-run

    def cb2(x, convergence):  # scipy's older form: the best point and tol / (std / |mean|)
        assert x.shape == (2,) and convergence > 0
        raise StopIteration
    assert differential_evolution(sphere, [(-5, 5)] * 2, seed=0, maxiter=100, callback=cb2).nit == 1


def test_step_is_one_generation():
    solver = DifferentialEvolution(sphere, [(-5, 5)] * 2, seed=0, popsize=5)
    x, f = solver.step()
    assert solver.nit == 1 and solver.nfev == 20
    assert f == pytest.approx(float(sphere(torch.tensor(x)[None])[0]))
    next(solver)
    assert solver.nit == 2


def test_init_modes_and_x0():
    for init in ("latinhypercube", "sobol", "random"):
        r = differential_evolution(sphere, [(-5, 5)] * 2, seed=0, maxiter=1, init=init)
        assert np.isfinite(r.fun)
    arr = np.random.default_rng(0).uniform(-5, 5, (7, 2))
    solver = DifferentialEvolution(sphere, [(-5, 5)] * 2, init=arr, x0=[0.5, -0.5], seed=0)
    pop = solver.lo + solver.population * solver.span
    assert pop.shape == (7, 2) and torch.allclose(pop[0], torch.tensor([0.5, -0.5], dtype=torch.float64))
    assert torch.allclose(pop[1:], torch.tensor(arr[1:]))


def test_nan_objective_counts_as_worst():
    def f(x):
        out = sphere(x)
        out[0] = float("nan")
        return out
    r = differential_evolution(f, [(-5, 5)] * 2, seed=0, maxiter=5)
    assert np.isfinite(r.fun)


def test_dithering_redraws_f_each_generation():
    solver = DifferentialEvolution(sphere, [(-5, 5)] * 2, seed=0, mutation=(0.5, 1.0))
    scales = []
    for _ in range(5):
        solver.step()
        scales.append(solver.scale)
    assert len(set(scales)) == 5 and all(0.5 <= s <= 1.0 for s in scales)


@pytest.mark.parametrize("kwargs,msg", [
    ({"strategy": "best3bin"}, "unknown strategy 'best3bin'; valid: rand1bin"),
    ({"bounds": [(1, 0)]}, "low > high"),
    ({"bounds": [(float("nan"), 1)]}, "finite"),
    ({"bounds": [(0, 1)], "popsize": 1, "strategy": "rand2bin"}, "too small for strategy 'rand2bin'"),
    ({"x0": [float("nan"), 0]}, "x0 must be 2 finite"),
    ({"x0": [9, 0]}, "outside the bounds"),
    ({"mutation": 3}, "mutation must be in"),
    ({"recombination": 1.5}, "recombination"),
    ({"init": "faure"}, "unknown init"),
    ({"boundary": "wrap"}, "unknown boundary"),
])
def test_errors(kwargs, msg):
    args = {"bounds": [(-1, 1)] * 2, **kwargs}
    bounds = args.pop("bounds")
    with pytest.raises(EvostyleError, match=msg):
        differential_evolution(sphere, bounds, maxiter=1, seed=0, **args)


def test_parse_strategy_lists_names():
    with pytest.raises(EvostyleError) as exc:
        parse_strategy("nope")
    assert all(s in str(exc.value) for s in STRATEGIES)


def test_scipy_adapter_same_objective():
    calls = []

    def f(x):
        calls.append(tuple(x.shape))
        return sphere(x)
    res = scipy_differential_evolution(f, [(-5, 5)] * 3, seed=0, maxiter=30, popsize=5)
    assert res.fun < 0.5
    assert calls[0] == (15, 3) and all(c == (15, 3) for c in calls)  # one (S, D) batch per generation
    assert len(calls) == res.nit + 1


def test_scipy_adapter_workers_passed_through():
    res = scipy_differential_evolution(_picklable_sphere, [(-5, 5)] * 2, seed=0, maxiter=5, workers=2)
    assert math.isfinite(res.fun)


def _picklable_sphere(x):
    return (x ** 2).sum(1)
