import json

import pandas as pd
import pytest
import torch

from evostyle.cli.search import main
from evostyle.errors import EvostyleError
from evostyle.rundir.files import LEGACY_COLUMNS, SECONDS_COLUMN
from evostyle.rundir.reader import load_run
from evostyle.search.config import make_config
from evostyle.search.problem import SearchProblem
from evostyle.search.run import run_search
from evostyle.search.signals import Interrupted
from evostyle.search.space import Param, Space, style_space

TINY = ["--size", "32", "--steps", "3", "--popsize", "5", "--outputs", "2", "--maxiter", "2", "--weights",
        "random", "--device", "cpu", "--quiet", "--no-report", "--seed", "1"]


def tiny_cfg(**kw):
    base = dict(size=32, steps=3, popsize=5, outputs=2, maxiter=2, weights="random", device="cpu", seed=1)
    base.update(kw)
    return make_config(base)


LEGACY_DEFAULTS = dict(rotation_mode="rectified", style_weight=10.0, lr=0.02,
                       search=["angles", "mix", "rotation_weight"], diversity_metric="pixel")
"""The defaults the golden files were written with: the transfer's before they were calibrated on
ImageNet features (results/calibration), the search groups and diversity before the levers won
(results/diversity_64). The golden tests check the code, not the defaults."""


def _rows(path):
    df = pd.read_csv(path / "candidates.csv")
    return df.drop(columns=[SECONDS_COLUMN])


def test_space_unit_roundtrip_and_scales():
    s = Space([Param("a", 0, 360), Param("w", 0.1, 10, "log"), Param("f", 0, 1, value=0.3)])
    u = torch.tensor([[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]], dtype=torch.float64)
    v = s.to_values(u)
    assert v["a"].tolist() == [0, 180, 360]
    assert torch.allclose(v["w"], torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64))
    assert v["f"].tolist() == [0.3] * 3
    assert torch.allclose(s.to_unit(v), u)
    with pytest.raises(EvostyleError, match="unknown parameter 'zz'; valid: a, w, f"):
        s.get("zz")
    with pytest.raises(EvostyleError, match="low >= high"):
        Space([Param("a", 1, 1)])
    with pytest.raises(EvostyleError, match="finite"):
        Space([Param("a", float("nan"), 1)])
    with pytest.raises(EvostyleError, match="NaN"):
        s.to_values(torch.tensor([[float("nan"), 0.0]]))


def test_style_space_groups_fix_and_bounds():
    s = style_space(3, 2, ["relu1_1", "relu2_1"], ["angles", "layers"], fixed={"angle_0": 0},
                    bounds={"layers": [0.5, 2]})
    assert [p.name for p in s.searched] == ["angle_1", "angle_2", "layer_relu1_1", "layer_relu2_1"]
    assert s.get("mix").value == 0.5 and s.get("layer_relu1_1").low == 0.5
    dfr = style_space(2, 1, ["relu1_1"], ["angles"], rotation_mode="dfr")
    vals = dfr.to_values(torch.tensor([[0.3, 0.8]]))
    assert vals["angle_0"].item() % 90 == 0 and vals["angle_1"].item() % 90 == 0
    with pytest.raises(EvostyleError, match="unknown parameter 'angle_9'"):
        style_space(2, 1, ["relu1_1"], ["angles"], fixed={"angle_9": 0})
    with pytest.raises(EvostyleError, match="unknown search group 'colour'"):
        style_space(2, 1, ["relu1_1"], ["colour"])


def test_tiny_search_writes_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(TINY + ["--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"run directory: {out}" in text and "best parameters: angle_0=" in text
    line = next(l for l in text.splitlines() if l.startswith("best parameters"))
    assert "mix=" in line and "layer_" not in line and "fixed, in" in line  # searched shown, fixed counted
    df = pd.read_csv(out / "candidates.csv")
    assert len(df) == 5 * 3
    cols = list(df.columns)
    assert cols[:2] == ["generation", "candidate"] and cols[-3:] == ["fitness", "failed", SECONDS_COLUMN]
    assert {"param_angle_0", "param_angle_1", "param_mix", "loss_content", "loss_style", "loss_score",
            "diversity_pixel", "diversity_feature"} <= set(cols)
    assert df.generation.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert df.fitness.dtype.kind == "f" and df.failed.dtype == bool
    gens = pd.read_csv(out / "generations.csv")
    assert gens.generation.tolist() == [0, 1, 2] and gens.best_fitness.is_monotonic_decreasing
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["weights"]["used"] == "random" and cfg["seed"] == 1 and "torch" in cfg["environment"]
    assert cfg["config"]["de"]["population"] == 5
    assert cfg["format"] == "evostyle-run/2"
    plan = cfg["plan"]  # the settings as resolved, once, by build()
    assert plan["compile"] == {"used": False, "why": "auto: not on CUDA", "mode": None}
    assert plan["optimizer"] == "torch-de" and plan["strategy"] == "best1bin" and plan["image_size"] == [21, 32]
    assert plan["backbone"] == "vgg19" and plan["preprocessing"] == "torchvision"
    assert json.loads((out / "state.json").read_text())["status"] == "finished"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"]["fitness"] == pytest.approx(df.fitness.min())
    assert summary["best"]["searched"] == ["angle_0", "angle_1", "mix", "rotation_weight", "perturb_strength",
                                           "diversity_loss_weight"]
    split = summary["seconds_by_phase"]
    assert set(split) == {"targets", "transfer", "scoring", "logging"} and min(split.values()) > 0
    assert split["transfer"] > split["targets"] and sum(split.values()) < summary["seconds"]
    assert sorted(p.name for p in (out / "best").glob("*.png")) == ["baseline_0.png", "baseline_1.png", "output_0.png",
                                                                  "output_1.png"]  # and its same-target baseline's
    cands, gens2 = load_run(out)
    assert len(cands) == 15 and len(gens2) == 3


def _run_stopped_at(monkeypatch, out, generation, exc, expect=None, cfg=None):
    """Run ``cfg`` (default tiny_cfg()) into ``out`` with ``exc`` raised as ``generation`` starts
    (``expect``: the error run_search then raises, default ``exc``'s type); returns its state.json."""
    real = SearchProblem._evaluate

    def stop(self, g, unit, *fidelity):
        if g == generation:
            raise exc
        return real(self, g, unit, *fidelity)
    monkeypatch.setattr(SearchProblem, "_evaluate", stop)
    with pytest.raises(expect or type(exc)):
        run_search(cfg or tiny_cfg(), out, quiet=True, report=False)
    monkeypatch.setattr(SearchProblem, "_evaluate", real)
    return json.loads((out / "state.json").read_text())


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, monkeypatch):
    full = tmp_path / "full"
    run_search(tiny_cfg(), full, quiet=True, report=False)
    part = tmp_path / "part"
    state = _run_stopped_at(monkeypatch, part, 2, KeyboardInterrupt("simulated kill"), Interrupted)
    assert state["generations_done"] == 2 and state["status"] == "interrupted"
    summary = run_search(tiny_cfg(), part, resume=True, quiet=True, report=False)
    assert summary["replayed_generations"] == 2
    pd.testing.assert_frame_equal(_rows(full), _rows(part))


def test_a_run_that_fails_says_so_and_resumes(tmp_path, monkeypatch):
    """An error mid-run (here in generation 1) leaves state.json 'failed' with the error, not 'running';
    the finished generations are kept and --resume completes the run."""
    out = tmp_path / "run"
    state = _run_stopped_at(monkeypatch, out, 1, RuntimeError("CUDA error: an illegal memory access (injected)"))
    assert state["status"] == "failed" and state["generations_done"] == 1
    assert state["error"] == "RuntimeError: CUDA error: an illegal memory access (injected)"
    run_search(tiny_cfg(), out, resume=True, quiet=True, report=False)
    state = json.loads((out / "state.json").read_text())
    assert state["status"] == "finished" and "error" not in state


def test_scipy_de_search_and_same_start(tmp_path):
    a = tmp_path / "a"
    run_search(tiny_cfg(optimizer="scipy-de"), a, quiet=True, report=False)
    b = tmp_path / "b"
    run_search(tiny_cfg(), b, quiet=True, report=False)
    ra, rb = _rows(a), _rows(b)
    assert len(ra) == 15
    pd.testing.assert_frame_equal(ra[ra.generation == 0], rb[rb.generation == 0])  # same initial population


def test_resume_refuses_settings_beside_it(tmp_path, capsys):
    """``--resume`` takes the run's saved config; other settings are named in a one-line error."""
    with pytest.raises(SystemExit) as exc:
        main(["--resume", str(tmp_path / "run"), "--popsize", "6", "--max-batch", "4"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--resume uses the run's saved config (only --maxiter, to extend it, and where it runs may change); " \
           "drop --population, --max-batch" in err
    assert "Traceback" not in err


def test_existing_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(TINY + ["--maxiter", "0", "--out", str(out)]) == 0
    with pytest.raises(SystemExit) as exc:
        main(TINY + ["--maxiter", "0", "--out", str(out)])
    assert exc.value.code == 2
    assert "already holds an evostyle run; use --resume" in capsys.readouterr().err
    assert main(TINY + ["--maxiter", "0", "--out", str(out), "--overwrite"]) == 0


def test_toml_config(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('outputs = 2\npopsize = 5\nmaxiter = 0\nsize = 32\nsteps = 2\nweights = "random"\n'
                   'device = "cpu"\nsearch = ["angles", "layers"]\n[bounds]\nlayers = [0.5, 2.0]\n')
    out = tmp_path / "run"
    assert main(["--config", str(cfg), "--quiet", "--no-report", "--out", str(out)]) == 0
    df = pd.read_csv(out / "candidates.csv")
    assert df.param_layer_relu1_1.between(0.5, 2.0).all() and df.param_layer_relu1_1.nunique() > 1


def test_example_config_file_loads():
    from pathlib import Path

    from evostyle.search.config import load_toml
    path = Path(__file__).resolve().parents[1] / "experiments" / "configs" / "rotation_search.toml"
    cfg = make_config(load_toml(path))
    sp = cfg.space
    assert sp.outputs == 4 and sp.fixed == {"angle_0": 0.0} and sp.bounds == {"layers": [0.2, 5.0]}
    space = style_space(sp.outputs, len(cfg.run.style), cfg.transfer.style_layers, sp.search, sp.rotation_mode,
                        sp.fixed, sp.bounds)
    assert space.get("angle_0").value == 0.0 and space.get("layer_relu3_1").high == 5.0


def test_help_shows_the_effective_defaults(capsys):
    """Flags default to None (so a config file can fill them); --help still shows SearchConfig's values."""
    from evostyle.search.config import SearchConfig
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    d = SearchConfig()
    assert f"per candidate (default: {d.transfer.steps})" in text and f"(default: {d.de.optimizer})" in text
    assert f"(default: {' '.join(d.run.style)})" in text and "means on (default: auto)" in text
    assert "run settings: Inputs and where a search runs." in text and "``" not in text
    assert "(default: None)" not in text


GOLDEN = __import__("pathlib").Path(__file__).parent / "data" / "golden_tiny_v0_candidates.csv"


def assert_same_search(new: pd.DataFrame, old: pd.DataFrame) -> None:
    """``new`` proposes what ``old`` (a committed candidates.csv) proposed, to 1e-9, and scores it
    alike. The scores are compared loosely because the golden files were written on another
    processor: the CPU's fp32 convolution kernels round differently from one processor to the next,
    and Adam's first, sign-like steps turn that into relative differences of up to 1e-3 in the
    fitness and 4e-2 in the smallest scores (diversity_feature), measured between an AVX-512/AMX Xeon
    and the machine that wrote them, where every column matched to 1e-9."""
    exact = ["generation", "candidate", "failed"] + [c for c in old.columns if c.startswith("param_")]
    pd.testing.assert_frame_equal(new[exact], old[exact], check_exact=False, rtol=1e-9, atol=1e-12)
    pd.testing.assert_series_equal(new.fitness, old.fitness, check_exact=False, rtol=1e-2)
    scores = [c for c in old.columns if c not in exact and c not in (SECONDS_COLUMN, "fitness")]
    pd.testing.assert_frame_equal(new[scores], old[scores], check_exact=False, rtol=0.1, atol=1e-3)


def test_scalar_mode_is_unchanged_apart_from_the_new_columns(tmp_path):
    """With the quality the fitness had before fidelity existed (``own_target``), the scalar search
    proposes and scores what evostyle 0.1.0 did (tests/data: that version's candidates.csv for
    this config, whose rotation mode was then the default); the new columns are added, and the default
    fitness is fidelity - lambda * diversity."""
    run_search(tiny_cfg(fitness_loss="own_target", **{**LEGACY_DEFAULTS, "rotation_mode": "channel",
                                                      "search": ["angles", "mix", "layers"]}),
               tmp_path / "old", quiet=True, report=False)
    new, old = pd.read_csv(tmp_path / "old" / "candidates.csv"), pd.read_csv(GOLDEN).rename(columns=LEGACY_COLUMNS)
    assert set(new.columns) - set(old.columns) == {"fidelity_style", "fidelity_content", "fidelity"}
    assert_same_search(new, old)
    cfg = tiny_cfg(search=["angles", "mix", "layers"])
    run_search(cfg, tmp_path / "new", quiet=True, report=False)
    d = pd.read_csv(tmp_path / "new" / "candidates.csv")
    assert (d.fitness - (d.fidelity - d.diversity_feature)).abs().max() < 1e-12
    sw = cfg.transfer.style_weight
    assert (d.fidelity - (d.fidelity_content + sw * d.fidelity_style)).abs().max() < 1e-9
    assert (d.fidelity_content - d.loss_content).abs().max() < 1e-6  # the same content error, measured twice


def _assert_mutually_non_dominated(points):
    from evostyle.de import dominates
    for a in points:
        for b in points:
            assert not dominates(a, b)


def test_pareto_search_logs_hypervolume_and_a_front_with_images(tmp_path):
    out = tmp_path / "run"
    summary = run_search(tiny_cfg(objective="pareto"), out, quiet=True)
    gens = pd.read_csv(out / "generations.csv")
    assert gens.hypervolume.is_monotonic_increasing and gens.hypervolume.iloc[-1] > 0
    cfg = json.loads((out / "config.json").read_text())
    ref = cfg["plan"]["hypervolume"]["reference"]
    assert cfg["plan"]["hypervolume"]["objectives"] == ["fidelity", "-diversity_feature"]
    assert ref[1] == 0.0 and ref[0] > 0
    assert cfg["plan"]["strategy"] == "rand1bin" and summary["optimizer"]["objective"] == "pareto"
    front = summary["front"]
    assert len(front) == gens.front_size.iloc[-1] >= 1
    _assert_mutually_non_dominated([(m["fidelity"], -m["diversity_feature"]) for m in front])
    cands = pd.read_csv(out / "candidates.csv")
    for m in front:
        row = cands[(cands.generation == m["generation"]) & (cands.candidate == m["candidate"])].iloc[0]
        assert row.fidelity == m["fidelity"] and all((out / p).is_file() for p in m["images"])
    # nothing evaluated dominates a front member
    from evostyle.de import dominates
    pts = list(zip(cands.fidelity, -cands.diversity_feature))
    assert not any(dominates(p, (m["fidelity"], -m["diversity_feature"])) for p in pts for m in front)
    assert "Pareto front" in (out / "report.html").read_text()


def test_pareto_search_resumed_equals_uninterrupted(tmp_path, monkeypatch):
    full = tmp_path / "full"
    a = run_search(tiny_cfg(objective="pareto", maxiter=3), full, quiet=True, report=False)
    part = tmp_path / "part"
    _run_stopped_at(monkeypatch, part, 2, KeyboardInterrupt("simulated kill"), Interrupted,
                    tiny_cfg(objective="pareto", maxiter=3))
    b = run_search(tiny_cfg(objective="pareto", maxiter=3), part, resume=True, quiet=True, report=False)
    pd.testing.assert_frame_equal(_rows(full), _rows(part))
    assert a["front"] == b["front"] and a["hypervolume"] == b["hypervolume"]


def test_random_search_spends_the_same_budget_from_the_same_start(tmp_path):
    run_search(tiny_cfg(optimizer="random"), tmp_path / "r", quiet=True, report=False)
    run_search(tiny_cfg(), tmp_path / "de", quiet=True, report=False)
    r, de = _rows(tmp_path / "r"), _rows(tmp_path / "de")
    assert len(r) == len(de) == 15
    pd.testing.assert_frame_equal(r[r.generation == 0], de[de.generation == 0])
    assert not r[r.generation == 1].param_angle_0.isin(de.param_angle_0).any()  # its own draws after that
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["optimizer"]["name"] == "random" and summary["best"]["fitness"] == pytest.approx(r.fitness.min())


def test_the_default_search_is_unchanged_by_the_restructuring(tmp_path):
    """The default search config (tiny sizes) gives the candidates.csv it gave before the package was
    split into subpackages and its configuration nested (tests/data: written by evostyle at 543e40c):
    every proposal to 1e-9, the scores as :func:`assert_same_search` says."""
    run_search(tiny_cfg(**LEGACY_DEFAULTS), tmp_path / "run", quiet=True, report=False)
    new = pd.read_csv(tmp_path / "run" / "candidates.csv")
    old = pd.read_csv(GOLDEN.with_name("golden_tiny_v1_candidates.csv")).rename(columns=LEGACY_COLUMNS)
    assert list(new.columns) == list(old.columns)
    assert_same_search(new, old)


def test_run_search_returns_a_typed_result_and_a_callback_can_stop_it(tmp_path):
    from evostyle.search import Generation, SearchResult
    seen = []

    def callback(gen: Generation):
        seen.append(gen)
        return gen.generation == 2  # stop after the third generation of five
    res = run_search(tiny_cfg(maxiter=4), tmp_path / "run", quiet=True, report=False, callback=callback)
    assert isinstance(res, SearchResult) and res.path == tmp_path / "run"
    assert [g.generation for g in seen] == [1, 2] and [g.nfev for g in seen] == [10, 15]
    assert all(len(g.rows) == 5 and g.best_fitness <= min(float(r["fitness"]) for r in g.rows) for g in seen)
    assert res.optimizer["message"] == "callback function requested stop early"
    assert len(res.candidates()) == 15 and res.fitness == res["best"]["fitness"] == res.candidates().fitness.min()
    assert json.loads((tmp_path / "run" / "state.json").read_text())["status"] == "finished"
    again = SearchResult.from_dir(tmp_path / "run")
    assert again.best == res.best and again.front.equals(res.front)
    text = repr(res).splitlines()  # printed as scipy's OptimizeResult: message, value, parameters, counts
    assert [line.split(":")[0].strip() for line in text] == ["message", "success", "fun", "x", "nit", "nfev",
                                                             "front", "path"]
    assert text[0].endswith("callback function requested stop early") and text[1].endswith("False")
    assert f"fun: {res.fitness:.6g} (fitness: fidelity" in text[2] and "feature diversity" in text[2]
    assert text[3].strip().startswith(f"x: angle_0={res.best_params['angle_0']:.4g}")
    assert text[4].endswith(": 2") and text[5].endswith(": 15") and str(res.path) in text[7]
    page = res._repr_html_()
    assert "best fitness" in page and page.count("<img") == 2  # the two outputs (no report: no plots)


@pytest.mark.parametrize("objective", ["scalar", "pareto"])
def test_extending_a_finished_run_equals_one_longer_run(tmp_path, objective, capsys):
    """``--resume DIR --maxiter N`` continues a finished run to N generations, as if it had been
    started with N: the same candidates, scores and best; config.json records the extension."""
    longer = run_search(tiny_cfg(maxiter=4, objective=objective), tmp_path / "long", quiet=True, report=False)
    short = tmp_path / "short"
    run_search(tiny_cfg(maxiter=2, objective=objective), short, quiet=True, report=False)
    assert main(["--resume", str(short), "--maxiter", "4", "--quiet", "--no-report"]) == 0
    pd.testing.assert_frame_equal(_rows(tmp_path / "long"), _rows(short))
    extended = json.loads((short / "summary.json").read_text())
    assert extended["best"] == longer["best"] and extended["front"] == longer["front"]
    assert extended["replayed_generations"] == 3
    rec = json.loads((short / "config.json").read_text())
    assert rec["config"]["de"]["maxiter"] == 4
    assert [(e["maxiter_from"], e["maxiter_to"], e["generations_done"]) for e in rec["extensions"]] == [(2, 4, 3)]
    assert json.loads((short / "state.json").read_text())["status"] == "finished"
    capsys.readouterr()
    # the extended run resumes like any other: finished at its new length, nothing to do
    assert main(["--resume", str(short), "--quiet", "--no-report"]) == 0


def test_extension_is_refused_below_the_generations_done_and_with_other_settings(tmp_path, capsys):
    out = tmp_path / "run"
    run_search(tiny_cfg(maxiter=3), out, quiet=True, report=False)
    before = (out / "candidates.csv").read_bytes()
    for argv, msg in ((["--maxiter", "1"], "already run 4 generations"), (["--steps", "5"], "drop --steps"),
                      (["--maxiter", "5", "--popsize", "6"], "drop --population")):
        with pytest.raises(SystemExit) as exc:
            main(["--resume", str(out), "--quiet", *argv])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
    assert (out / "candidates.csv").read_bytes() == before
    with pytest.raises(EvostyleError, match=r"differs in transfer\.steps"):  # the Python API checks the same
        run_search(tiny_cfg(maxiter=5, steps=4), out, resume=True, quiet=True, report=False)


def test_an_interrupted_run_can_be_extended_too(tmp_path, monkeypatch):
    run_search(tiny_cfg(maxiter=3), tmp_path / "long", quiet=True, report=False)
    part = tmp_path / "part"
    _run_stopped_at(monkeypatch, part, 1, KeyboardInterrupt("simulated kill"), Interrupted, tiny_cfg(maxiter=2))
    run_search(tiny_cfg(maxiter=3), part, resume=True, quiet=True, report=False)
    pd.testing.assert_frame_equal(_rows(tmp_path / "long"), _rows(part))
