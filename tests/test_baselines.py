"""The baselines behind --optimizer (sobol, Optuna's tpe and nsga2) run on the same space, budget and
CSV schema as DE, start from the same initial population, and resume exactly."""

import builtins

import pandas as pd
import pytest

from evostyle.errors import EvostyleError
from evostyle.search.config import make_config
from evostyle.search.run import resume_search, run_search
from evostyle.search.signals import Interrupted

BASE = dict(size=24, steps=1, popsize=5, outputs=2, maxiter=2, weights="random", device="cpu", seed=5)
DROP = ["gen_seconds_per_candidate"]


@pytest.fixture(scope="module")
def de_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("de") / "run"
    return run_search(make_config({**BASE, "objective": "pareto"}), out, quiet=True, report=False)


@pytest.mark.parametrize("optimizer", ["sobol", "tpe", "nsga2"])
def test_a_baseline_runs_from_the_shared_start_with_the_same_schema_and_resumes(optimizer, de_run, tmp_path,
                                                                                interrupt_at):
    cfg = make_config({**BASE, "optimizer": optimizer, "objective": "pareto"})
    whole = run_search(cfg, tmp_path / "whole", quiet=True, report=False)
    a, b = whole.candidates(), de_run.candidates()
    assert list(a.columns) == list(b.columns) and len(a) == len(b) == 15
    params = [c for c in a if c.startswith("param_")]
    pd.testing.assert_frame_equal(a[a.generation == 0][params], b[b.generation == 0][params])  # the same start
    assert not a[a.generation == 1][params].equals(b[b.generation == 1][params].set_index(a.index[5:10]))
    assert whole.optimizer["name"] == optimizer and whole.optimizer["nit"] == 2 and len(whole.front)

    interrupt_at(2)
    with pytest.raises(Interrupted):
        run_search(cfg, tmp_path / "part", quiet=True, report=False)
    interrupt_at(None)
    resumed = resume_search(tmp_path / "part", quiet=True, report=False)
    pd.testing.assert_frame_equal(a.drop(columns=DROP), resumed.candidates().drop(columns=DROP))
    assert resumed["replayed_generations"] == 2 and resumed.front.equals(whole.front)


def test_the_optuna_baselines_say_how_to_install_optuna(monkeypatch):
    real_import = builtins.__import__

    def no_optuna(name, *args, **kwargs):
        if name == "optuna" or name.startswith("optuna."):
            raise ImportError("No module named 'optuna'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_optuna)
    with pytest.raises(EvostyleError, match=r"optimizer='tpe' needs Optuna: pip install 'evostyle\[optuna\]'"):
        make_config({"optimizer": "tpe"})
    make_config({"optimizer": "sobol"})  # needs nothing beyond torch


def test_optuna_is_quiet_during_the_search_and_keeps_the_callers_log_level_after(tmp_path, capsys):
    """Optuna's logging level is process-wide: the search quiets its per-trial lines while it asks and
    tells, and gives a notebook back the level it had set."""
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        run_search(make_config({**BASE, "optimizer": "tpe", "maxiter": 1}), tmp_path / "run", quiet=True,
                   report=False)
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
        assert "Trial" not in capsys.readouterr().err  # no "Trial 3 finished with value ..." lines
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
