"""scipy's own differential-evolution tests (scipy/optimize/tests/test__differential_evolution.py,
scipy 1.17) that apply to evostyle.de, rewritten for our batched API: the objective takes a (P, D)
tensor, the solver's internals have other names (scale_out / scale_in for _scale_parameters /
_unscale_parameters, _samples for _select_samples, MUTATIONS for the mutation functions).

Not applicable, and why (the module doc of evostyle/de/solver.py lists the deliberate differences):
- constraints (test_constraint_*, test_impossible_constraint, test_accept_trial, test_L1 ... test_L9,
  test_matrix_linear_constraint, test_constraint_violation_error_message): no constraints;
- integrality (test_integrality, test_integrality_limits): no integer parameters;
- polishing (test_polish_function; the polish half of test_differential_evolution and
  test_intermediate_result): no L-BFGS-B polish, so both solvers spend the same budget;
- workers and immediate updating (test_immediate_updating, test_parallel_threads,
  test_parallel_processes, the workers half of test_vectorized): one batched call per generation,
  always deferred;
- maxfun (test_maxfun_stops_solve, the maxfun half of test_iteration): the budget is in generations;
- args (test_args_tuple_is_passed): close over them instead;
- a scalar objective (test_invalid_functional's message, the non-vectorized half of test_vectorized,
  test_infinite_objective_function's per-point form): the objective is always batched;
- scipy's population order (x is population[0]: the best is promoted to the front) and reference
  cycles (test_reference_cycles): implementation details of scipy's solver;
- Bounds objects (the second half of test_bounds_checking): bounds are (low, high) pairs.
"""

import numpy as np
import pytest
import torch
from scipy.optimize import OptimizeResult

from evostyle.de import MUTATIONS, DifferentialEvolution, differential_evolution, parse_strategy
from evostyle.errors import EvostyleError


def rosen(x: torch.Tensor) -> torch.Tensor:
    """Rosenbrock on a (P, D) batch."""
    return (100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1 - x[:, :-1]) ** 2).sum(1)


def quadratic(x: torch.Tensor) -> torch.Tensor:
    return x[:, 0] ** 2


BOUNDS = [(0.0, 2.0), (0.0, 2.0)]


def test_strategy_names_resolve_to_their_mutation():
    for name, mutation in (("best1bin", "best1"), ("best1exp", "best1"), ("rand1bin", "rand1"),
                           ("rand1exp", "rand1"), ("rand2exp", "rand2"), ("best2bin", "best2"),
                           ("rand2bin", "rand2"), ("randtobest1bin", "randtobest1"),
                           ("randtobest1exp", "randtobest1"), ("currenttobest1bin", "currenttobest1"),
                           ("currenttobest1exp", "currenttobest1")):
        solver = DifferentialEvolution(rosen, BOUNDS, strategy=name)
        assert solver.strategy == name and solver.mutation_fn is MUTATIONS[mutation]
        assert parse_strategy(name)[1] == name[-3:]


def _population():
    """scipy's hand population of 7 one-dimensional members, 0.1 ... 0.7, F = 0.5."""
    return torch.arange(1, 8, dtype=torch.float64)[:, None] / 10


def _mutant(name, r, best=0, i=1):
    x = _population()
    return MUTATIONS[name].fn(x, best, torch.tensor([i]), torch.tensor([r]), 0.5)[0, 0].item()


def test_mutation_formulas_on_scipys_hand_population():
    # scipy's samples [2, 3, 4, 5, 6]; its best is member 0
    assert _mutant("best1", [2, 3]) == pytest.approx(0.05)  # 0.1 + 0.5 (0.3 - 0.4)
    assert _mutant("rand1", [2, 3, 4]) == pytest.approx(0.25)  # 0.3 + 0.5 (0.4 - 0.5)
    assert _mutant("best2", [2, 3, 4, 5]) == pytest.approx(-0.1)
    assert _mutant("rand2", [2, 3, 4, 5, 6]) == pytest.approx(0.1)
    assert _mutant("randtobest1", [2, 3, 4]) == pytest.approx(0.15)
    assert _mutant("currenttobest1", [2, 3], i=1) == pytest.approx(0.1)


def test_dithering_and_invalid_mutation_values():
    assert DifferentialEvolution(quadratic, BOUNDS, mutation=(0.5, 1)).dither == (0.5, 1.0)
    for bad in ((0.5, 3), (-1, 1), (0.1, float("nan"))):
        with pytest.raises(ValueError):
            DifferentialEvolution(rosen, BOUNDS, mutation=bad)
    solver = DifferentialEvolution(rosen, BOUNDS, mutation=0.5)
    assert solver.scale == 0.5 and solver.dither is None


def test_scaling_to_and_from_the_unit_cube():
    solver = DifferentialEvolution(quadratic, [(0, 100)])
    assert solver.scale_out(torch.tensor([0.3], dtype=torch.float64)).item() == pytest.approx(30)
    assert solver.scale_in(torch.tensor([30.0], dtype=torch.float64)).item() == pytest.approx(0.3)


def test_equal_bounds_fix_a_parameter():
    solver = DifferentialEvolution(quadratic, [(2.0, 2.0), (1.0, 3.0)])
    assert torch.allclose(solver.scale_in(torch.tensor([2.0, 2.0], dtype=torch.float64)),
                          torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert solver.population.shape[0] == 15  # popsize x the one varying parameter
    res = differential_evolution(quadratic, [(2.0, 2.0), (3.0, 3.0)], seed=0, maxiter=5)
    assert res.x.tolist() == [2.0, 3.0]


def test_out_of_bounds_trial_entries_are_resampled():
    solver = DifferentialEvolution(quadratic, [(0, 100)], seed=0)
    trial = torch.tensor([[1.1, -100, 0.9, 2.0, 300.0, -0.00001]], dtype=torch.float64)
    fixed = solver._ensure_bounds(trial)
    assert fixed[0, 2] == 0.9 and ((fixed >= 0) & (fixed <= 1)).all()


def test_result_fun_is_the_objective_at_x_and_the_best_member():
    res = differential_evolution(quadratic, [(-2, 2)], maxiter=1, seed=0)
    assert res.fun == pytest.approx(float(quadratic(torch.from_numpy(res.x)[None])))
    assert res.fun == res.population_energies.min()


def test_intermediate_result_and_stop_iteration():
    maxiter = 10
    seen = []

    def callback(intermediate_result):
        r = intermediate_result
        seen.append(r)
        assert isinstance(r, OptimizeResult) and r.population.shape[1] == 2 and r.nit == len(seen)
        assert r.message == "in progress" and r.success is True
        assert r.fun == pytest.approx(float(rosen(torch.tensor(r.x)[None])))
        assert np.allclose(r.population_energies, rosen(torch.tensor(r.population)).numpy())
        if len(seen) == maxiter:
            raise StopIteration
    kwargs = dict(bounds=[(0, 2), (0, 2)], seed=838245)
    res = differential_evolution(rosen, **kwargs, callback=callback)
    ref = differential_evolution(rosen, **kwargs, maxiter=maxiter)
    assert res.success is ref.success is False
    assert len(seen) == res.nit == maxiter
    assert res.message == "callback function requested stop early"
    assert ref.message == "Maximum number of iterations has been exceeded."
    for field in ("x", "fun", "nfev", "nit", "population", "population_energies"):
        assert np.array_equal(res[field], ref[field]) and np.array_equal(seen[-1][field], ref[field])


def test_callback_terminates_in_each_of_scipys_forms():
    msg = "callback function requested stop early"
    res = differential_evolution(rosen, BOUNDS, seed=0, callback=lambda x, convergence=0.0: True)
    assert res.message == msg

    def stop(intermediate_result):
        raise StopIteration
    assert not differential_evolution(rosen, BOUNDS, seed=0, callback=stop).success
    res = differential_evolution(rosen, BOUNDS, seed=0, callback=lambda x, convergence=0.0: [10])
    assert res.message == msg and not res.success
    assert differential_evolution(rosen, BOUNDS, seed=0, callback=lambda x, convergence=0.0: []).success


def test_invalid_strategy_and_bounds_raise_value_errors():
    with pytest.raises(ValueError):
        differential_evolution(rosen, [(-3, 3)], strategy="abc")
    with pytest.raises(ValueError):
        differential_evolution(rosen, [(-3)])
    with pytest.raises(ValueError):
        differential_evolution(rosen, [(-3, 3), (3, 4, 5)])
    assert issubclass(EvostyleError, ValueError)


def test_samples_are_distinct_and_exclude_the_candidate():
    solver = DifferentialEvolution(rosen, [(float(i), float(i + 6)) for i in range(6)], popsize=1, seed=0)
    r = solver._samples(solver.population.shape[0], 5)
    for i, row in enumerate(r.tolist()):
        assert len({i, *row}) == 6


def test_maxiter_stops_the_solve():
    res = differential_evolution(rosen, BOUNDS, maxiter=1, seed=0)
    assert res.success is False and res.message == "Maximum number of iterations has been exceeded."
    assert res.nit == 1


def test_quadratic_and_seeded_repeatability():
    a = differential_evolution(quadratic, [(-100, 100)], seed=1, tol=0.5)
    b = differential_evolution(quadratic, [(-100, 100)], seed=1, tol=0.5)
    assert np.array_equal(a.x, b.x) and a.nfev == b.nfev
    assert abs(differential_evolution(quadratic, [(-100, 100)], tol=0.02, seed=1).x[0]) < 1


@pytest.mark.parametrize("init", ["random", "latinhypercube", "sobol", "halton"])
def test_a_numpy_generator_seeds_every_init(init):
    res = differential_evolution(quadratic, [(-100, 100)], rng=np.random.default_rng(), tol=0.5, init=init)
    assert np.isfinite(res.fun)
    g1 = differential_evolution(quadratic, [(-100, 100)], rng=np.random.default_rng(5), tol=0.5, init=init)
    g2 = differential_evolution(quadratic, [(-100, 100)], seed=np.random.default_rng(5), tol=0.5, init=init)
    assert np.array_equal(g1.x, g2.x)


def test_exponential_crossover_runs_and_a_large_popsize():
    differential_evolution(rosen, BOUNDS, strategy="best1exp", maxiter=1, seed=0)
    differential_evolution(rosen, [(-5, 5), (-5, 5)], popsize=49, maxiter=1, seed=0)  # scipy gh-4511


def test_initial_energies_cost_one_evaluation_per_member():
    solver = DifferentialEvolution(rosen, BOUNDS, popsize=3, seed=0)
    solver.init()
    assert solver.nfev == 6 and solver.energies.shape == (6,)


def test_the_solver_iterates_and_never_gets_worse():
    solver = DifferentialEvolution(rosen, BOUNDS, popsize=3, seed=0, maxiter=60)
    x, fun_prev = next(solver)
    assert x.shape == (2,) and solver.nfev == 12
    for i, (_, fun) in enumerate(solver):
        assert fun_prev >= fun
        fun_prev = fun
        if i == 50:
            break


def test_convergence_and_converged():
    solver = DifferentialEvolution(rosen, BOUNDS, tol=0.2, seed=0)
    solver.solve()
    assert solver.convergence() < 0.2 and solver.converged()
    res = differential_evolution(rosen, [(0, 2), (0, 2)], seed=0)
    assert res.success


def test_maxiter_none_means_the_default():
    solver = DifferentialEvolution(rosen, BOUNDS, maxiter=None, seed=0)
    assert solver.maxiter == 1000
    solver.solve()


def test_population_initiation():
    with pytest.raises(ValueError):
        DifferentialEvolution(rosen, BOUNDS, init="rubbish")
    population = np.linspace(-1, 3, 10).reshape(5, 2)
    solver = DifferentialEvolution(rosen, BOUNDS, init=population, strategy="best2bin", atol=0.01, seed=1)
    assert solver.nfev == 0 and solver.energies is None and solver.population.shape == (5, 2)
    expect = np.clip(population / 2.0, 0, 1)  # bounds (0, 2): into the unit cube, clipped
    assert np.allclose(solver.population.numpy(), expect)
    assert solver.population.min() == 0 and solver.population.max() == 1
    with pytest.raises(ValueError):
        DifferentialEvolution(rosen, BOUNDS, init=np.linspace(-1, 3, 15).reshape(5, 3))
    x0 = np.random.default_rng(0).uniform(0.0, 2.0, size=2)
    solver = DifferentialEvolution(rosen, BOUNDS, x0=x0, seed=0)
    assert np.allclose(solver.population[0].numpy(), x0 / 2.0)


def test_x0():
    assert differential_evolution(rosen, BOUNDS, x0=[0.2, 0.8], seed=0).success
    with pytest.raises(ValueError):
        differential_evolution(rosen, BOUNDS, x0=[0.2, 2.1])


def test_an_objective_that_is_sometimes_infinite():
    def sometimes_inf(x):
        return torch.where(x[:, 0] < 0.5, torch.full_like(x[:, 1], float("inf")), x[:, 1])
    res = differential_evolution(sometimes_inf, [(0, 1), (0, 1)], seed=0)
    assert np.isfinite(res.fun) and res.x[0] >= 0.5


def test_deferred_updating_with_exponential_crossover():
    assert differential_evolution(rosen, [(0.0, 2.0), (0.0, 2.0)], strategy="best1exp", seed=0).success


def test_a_vectorized_objective_is_called_once_per_generation():
    calls = [0]

    def rosen_counted(x):
        calls[0] += 1
        return rosen(x)
    res = differential_evolution(rosen_counted, [(0, 10), (0, 10)], seed=1)
    assert calls[0] == res.nit + 1 and res.nfev == calls[0] * 30


def test_a_callable_strategy():
    d, popsize, mutation, recombination = 4, 10, 0.8, 0.7
    total = d * popsize
    calls = [0]

    def custom(candidate, population, rng=None):
        calls[0] += 1
        trial = np.copy(population[candidate])
        fill = rng.choice(d)
        pool = np.arange(total)
        rng.shuffle(pool)
        idx = pool[:3]
        r0, r1 = idx[idx != candidate][:2]
        bprime = population[0] + mutation * (population[r0] - population[r1])
        cross = rng.uniform(size=d) < recombination
        cross[fill] = True
        return np.where(cross, bprime, trial)
    solver = DifferentialEvolution(rosen, [(0, 10.0)] * d, popsize=popsize, recombination=recombination,
                                   mutation=mutation, maxiter=2, strategy=custom, seed=10)
    assert solver.strategy is custom
    solver.solve()
    assert calls[0] == 2 * total
    assert differential_evolution(rosen, [(0, 10.0)] * d, strategy=custom, seed=10, maxiter=20).nit == 20
    with pytest.raises(ValueError, match="strategy must return"):
        differential_evolution(rosen, [(0, 10.0)] * d, strategy=lambda c, p, rng=None: np.array([1.0, 2.0]))
