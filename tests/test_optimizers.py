"""Outer optimisers are a registry (evostyle.search.OPTIMIZERS): each entry owns its checks and its
solve, and one registered from outside the package runs a search, is refused where it cannot run, and
resumes exactly."""

import pandas as pd
import pytest
import torch
from scipy.optimize import OptimizeResult

from evostyle.cli.search import main
from evostyle.errors import EvostyleError
from evostyle.search import OPTIMIZERS, Optimizer
from evostyle.search.config import make_config
from evostyle.search.run import resume_search, run_search
from evostyle.search.signals import Interrupted

BASE = dict(size=24, steps=2, popsize=5, outputs=2, maxiter=2, weights="random", device="cpu", seed=4)


class HillClimb(Optimizer):
    """A user's outer loop: every member takes a Gaussian step and keeps it when it is better."""

    multi_objective = False

    def solve(self, problem, init, device, callback=None):
        gen = torch.Generator().manual_seed(self.cfg.run.seed)
        pop, f = init.clone(), problem(init)
        nit, message = 0, "maxiter reached"
        while nit < self.cfg.de.maxiter:
            nit += 1
            trial = (pop + 0.1 * torch.randn(pop.shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
            ft = problem(trial)
            better = ft < f
            pop, f = torch.where(better[:, None], trial, pop), torch.where(better, ft, f)
            if callback is not None and callback(OptimizeResult(x=pop[f.argmin()].numpy(), fun=float(f.min()))):
                message = "callback function requested stop early"
                break
        return OptimizeResult(x=pop[f.argmin()].numpy(), fun=float(f.min()), nit=nit, success=False, message=message)


@pytest.fixture
def hill_climb():
    OPTIMIZERS.register("hill-climb", HillClimb)
    yield "hill-climb"
    OPTIMIZERS.unregister("hill-climb")


def test_the_built_in_optimisers_are_registry_entries():
    assert list(OPTIMIZERS)[:4] == ["torch-de", "gde3", "scipy-de", "random"]
    assert all(issubclass(OPTIMIZERS.get(n), Optimizer) for n in OPTIMIZERS)
    cfg = make_config({"optimizer": "gde3", "objective": "pareto"})
    assert OPTIMIZERS.get("gde3")(cfg).strategy() == "rand1bin" and OPTIMIZERS.get("random")(cfg).strategy() is None


@pytest.mark.parametrize(("settings", "message"), [
    ({"optimizer": "scipy-de", "objective": "pareto"}, "scipy-de has no multi-objective mode; use optimizer="),
    ({"optimizer": "gde3"}, "gde3 minimises several objectives; use objective='pareto'"),
    ({"optimizer": "gde3", "objective": "pareto", "strategy": "best1bin"}, "runs GDE3, which takes strategy"),
    ({"strategy": "rand2exp", "popsize": 5}, "population 5 is too small for strategy 'rand2exp'"),
    ({"optimizer": "no-such"}, "unknown optimizer 'no-such'"),
    ({"optimizer": "random", "init": "bogus"}, "unknown init 'bogus'"),  # the search draws it, whichever optimiser
    ({"optimizer": "random", "mutation": 3.0}, "mutation must be in"),
])
def test_each_optimiser_refuses_what_it_cannot_run_before_anything_is_written(settings, message):
    with pytest.raises(EvostyleError, match=message):
        make_config(settings)


def test_a_user_optimiser_runs_a_search_from_the_command_line(hill_climb, tmp_path, capsys):
    out = tmp_path / "run"
    args = [f"--{k}={v}" for k, v in BASE.items()] + ["--optimizer", hill_climb, "--out", str(out), "-q",
                                                       "--no-report"]
    assert main(args) == 0
    assert "best parameters" in capsys.readouterr().out
    res = run_search(make_config({**BASE, "optimizer": hill_climb}), tmp_path / "api", quiet=True, report=False)
    assert res.optimizer["name"] == hill_climb and res.optimizer["strategy"] is None and res.optimizer["nit"] == 2
    cands = res.candidates()
    assert len(cands) == 15 and cands.generation.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    pd.testing.assert_frame_equal(cands.drop(columns="gen_seconds_per_candidate"),
                                  pd.read_csv(out / "candidates.csv").astype(cands.dtypes.to_dict())
                                  .drop(columns="gen_seconds_per_candidate"))
    with pytest.raises(EvostyleError, match="hill-climb has no multi-objective mode"):
        make_config({**BASE, "optimizer": hill_climb, "objective": "pareto"})


def test_a_user_optimiser_resumes_and_extends_exactly(hill_climb, tmp_path, interrupt_at):
    cfg = make_config({**BASE, "optimizer": hill_climb, "maxiter": 3})
    whole = run_search(cfg, tmp_path / "whole", quiet=True, report=False)
    interrupt_at(2)
    part = tmp_path / "part"
    with pytest.raises(Interrupted):
        run_search(make_config({**BASE, "optimizer": hill_climb, "maxiter": 2}), part, quiet=True, report=False)
    interrupt_at(None)
    resumed = resume_search(part, maxiter=3, quiet=True, report=False)  # resumed and extended in one go
    drop = ["gen_seconds_per_candidate"]
    pd.testing.assert_frame_equal(whole.candidates().drop(columns=drop), resumed.candidates().drop(columns=drop))
    assert resumed.best == whole.best and resumed["replayed_generations"] == 2
