"""--optimizer dehb: a search whose rungs run fewer transfer steps, whose promoted candidates continue
their transfers, whose CSV says the steps, in which only full transfers count, and which resumes after
a kill to the same rows."""

import pandas as pd
import pytest
import torch

from evostyle.errors import EvostyleError
from evostyle.search.config import make_config
from evostyle.search.run import resume_search, run_search
from evostyle.search.signals import Interrupted

BASE = dict(size=24, steps=9, outputs=2, weights="random", device="cpu", seed=2, optimizer="dehb", min_steps=1,
            eta=3, search=["angles", "rotation_weight"], style=["sample:starry_night.jpg"], save_images="best")
LADDER = {**BASE, "min_steps": None, "size": 32, "scales": [24, 32], "steps": 6, "brackets": 4}
"""DEHB over a coarse-to-fine ladder: budget levels 3 steps at 24 px and all 6 (3 more at 32 px)."""


def test_rungs_follow_the_schedule_promotions_continue_and_only_full_transfers_count(tmp_path):
    res = run_search(make_config(BASE), tmp_path / "run", quiet=True)
    c = pd.read_csv(tmp_path / "run" / "candidates.csv")
    per_gen = c.groupby("generation").agg(n=("candidate", "size"), steps=("steps", "first"), ran=("steps_run", "first"))
    assert per_gen.n.tolist() == [9, 3, 1, 3, 1, 3] and per_gen.steps.tolist() == [1, 3, 9, 3, 9, 9]
    assert per_gen.ran.tolist() == [1, 2, 6, 3, 6, 9]  # generations 1, 2 and 4 carry on the rung below
    params = [col for col in c if col.startswith("param_")]
    for g in (1, 2, 4):  # a promoted candidate is a point of the rung below, and among its best
        below, here = c[c.generation == g - 1], c[c.generation == g]
        assert set(map(tuple, here[params].to_numpy())) <= set(map(tuple, below[params].to_numpy()))
        assert set(here[params].apply(tuple, axis=1)) == set(
            below.nsmallest(len(here), "fitness")[params].apply(tuple, axis=1))
    full = c[c.steps == 9]
    assert res.best["fitness"] == pytest.approx(full.fitness.min())  # not the low rungs' (other scale)
    assert c.fitness.min() <= full.fitness.min()
    assert res.optimizer["name"] == "dehb" and res.optimizer["strategy"] == "rand1bin"
    assert not list((tmp_path / "run").glob("transfer_state_*"))  # a finished run keeps no transfers


def test_over_a_ladder_the_levels_are_its_scales_and_promotions_continue_at_the_next_scale(tmp_path):
    res = run_search(make_config(LADDER), tmp_path / "run", quiet=True, report=False)
    c = pd.read_csv(tmp_path / "run" / "candidates.csv")
    per_gen = c.groupby("generation").agg(n=("candidate", "size"), steps=("steps", "first"),
                                          ran=("steps_run", "first"), scale=("scale", "first"))
    assert (c.groupby("generation").scale.nunique() == 1).all()
    assert per_gen.n.tolist() == [3, 1, 2, 3, 1, 2] and per_gen.steps.tolist() == [3, 6, 6, 3, 6, 6]
    assert per_gen.ran.tolist() == [3, 3, 6, 3, 6, 6]  # generation 1 carries on at 32 px; the DE cycle restarts
    assert per_gen.scale.tolist() == [24, 32, 32, 24, 32, 32]
    params = [col for col in c if col.startswith("param_")]
    promoted = c[c.generation == 1][params].apply(tuple, axis=1)
    assert set(promoted) == set(c[c.generation == 0].nsmallest(1, "fitness")[params].apply(tuple, axis=1))
    assert res.best["fitness"] == pytest.approx(c[c.scale == 32].fitness.min())  # 24 px rows do not count
    assert {int(v) for v in c[c.scale == 24].steps} == {3}
    # a finished run reopens as it is: its generations are rungs, which maxiter (unused by dehb) does not bound
    again = resume_search(tmp_path / "run", quiet=True, report=False)
    assert again.best == res.best and len(again.candidates()) == len(c)


@pytest.mark.parametrize("config, kill_at", [(BASE, 2), (BASE, 3), (BASE, 5), (LADDER, 1)],
                         ids=["continues", "starts-over", "past-maxiter", "ladder-continues"])
def test_a_killed_dehb_search_resumes_to_the_same_rows(tmp_path, interrupt_at, config, kill_at):
    whole = run_search(make_config(config), tmp_path / "whole", quiet=True, report=False)
    interrupt_at(kill_at)
    with pytest.raises(Interrupted):
        run_search(make_config(config), tmp_path / "part", quiet=True, report=False)
    assert list((tmp_path / "part").glob("transfer_state_*"))  # kept for the resume
    interrupt_at(None)
    resumed = resume_search(tmp_path / "part", quiet=True, report=False)
    drop = ["gen_seconds_per_candidate"]
    pd.testing.assert_frame_equal(whole.candidates().drop(columns=drop), resumed.candidates().drop(columns=drop))
    assert resumed.best == whole.best


def test_a_lost_transfer_state_is_named_and_settings_that_cannot_run_are_refused(tmp_path, interrupt_at):
    interrupt_at(2)
    with pytest.raises(Interrupted):
        run_search(make_config(BASE), tmp_path / "part", quiet=True, report=False)
    interrupt_at(None)
    for kept in (tmp_path / "part").glob("transfer_state_*"):
        kept.unlink()
    with pytest.raises(EvostyleError, match="generation 2 continues generation 1's transfers"):
        resume_search(tmp_path / "part", quiet=True, report=False)
    for bad, message in [({"optimizer": "torch-de"}, "min-steps and brackets set a multi-fidelity search"),
                         ({"min_steps": 20}, "min-steps 20 is more than steps 9"),
                         ({"eta": 1.0}, "eta must be above 1")]:
        with pytest.raises(EvostyleError, match=message):
            make_config({**BASE, **bad})


def test_a_pareto_dehb_search_has_a_front_of_full_transfers(tmp_path):
    res = run_search(make_config({**BASE, "objective": "pareto", "brackets": 4}), tmp_path / "run", quiet=True,
                     report=False)
    c = res.candidates()
    assert c.generation.max() == 8 and (c.steps.groupby(c.generation).nunique() == 1).all()  # 3 + 2 + 1 + 3 rungs
    steps = c.set_index(["generation", "candidate"]).steps
    assert len(res.front) and all(steps[int(m.generation), int(m.candidate)] == 9 for m in res.front.itertuples())
    assert res.hypervolume > 0 and torch.isfinite(torch.tensor(res.hypervolume))


def test_de_settings_dehb_does_not_read_are_named_once_not_silently_ignored(caplog):
    """Population, maxiter, init and strategy do not reach DEHB (its brackets set them): a config that
    changes them hears so in one line (a warning, as one config is often run under several optimisers);
    one that leaves them at their defaults hears nothing."""
    import logging
    with caplog.at_level(logging.WARNING, logger="evostyle"):
        make_config(BASE)
        assert not caplog.records
        make_config({**BASE, "popsize": 12, "maxiter": 7})
    assert [r.getMessage() for r in caplog.records] == [
        "dehb sizes its subpopulations and its budget from the brackets and runs rand1bin: population, maxiter "
        "are not used"]
