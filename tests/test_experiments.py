"""An experiment's --quick mode, end to end, as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _quick(name: str, out: Path, timeout: int = 600, *extra: str) -> None:
    """Run ``experiments/<name>.py --quick`` (and ``extra`` flags) on random weights on the CPU into
    ``out``; it must succeed."""
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / f"{name}.py"), "--quick", "--weights",
                           "random", "--device", "cpu", "--out", str(out), *extra], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr


def test_two_styles_quick(tmp_path):
    out = tmp_path / "two_styles"
    _quick("two_styles", out, timeout=300)
    df = pd.read_csv(out / "mixes.csv")
    assert df.weight_of_B.tolist() == [0, 0.25, 0.5, 0.75, 1]
    # moving weight from A to B moves the output towards B's target and away from A's
    assert df.style_loss_vs_B.is_monotonic_decreasing and df.style_loss_vs_A.is_monotonic_increasing
    rec = json.loads((out / "record.json").read_text())
    assert rec["setting"] == "quick" and rec["weights"]["used"] == "random"
    assert (out / "grid.jpg").stat().st_size > 1000 and "weight_of_B" in (out / "table.md").read_text()


def test_experiment_bad_input_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "shuffle.py"), "--quick", "--weights",
                           str(tmp_path / "missing.pt"), "--out", str(tmp_path / "o")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def _common():
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        import _common
    finally:
        sys.path.remove(str(ROOT / "experiments"))
    return _common


def _args(**kw):
    import argparse
    return argparse.Namespace(**{"out": None, "quick": False, "overwrite": False, **kw})


def test_quick_writes_under_runs_quick_and_never_into_results(tmp_path, monkeypatch):
    c = _common()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "two_styles").mkdir(parents=True)
    (tmp_path / "results" / "two_styles" / "record.json").write_text('{"setting": "full"}')
    assert c.out_dir(_args(quick=True), "two_styles") == Path("runs/quick/two_styles")
    assert (tmp_path / "runs" / "quick" / "two_styles").is_dir()
    assert c.out_dir(_args(), "shuffle") == Path("results/shuffle")  # a new folder is fine


def test_experiments_refuse_to_replace_results_without_overwrite(tmp_path):
    c = _common()
    from evostyle.errors import EvostyleError
    done = tmp_path / "done"
    done.mkdir()
    (done / "record.json").write_text('{"setting": "full"}')
    for args in (_args(out=str(done)), _args(out=str(done), quick=True)):  # a quick run may not replace either
        try:
            c.out_dir(args, "two_styles")
        except EvostyleError as exc:
            assert "--overwrite" in str(exc) and "--out DIR" in str(exc)
        else:
            raise AssertionError("replaced committed results")
    assert c.out_dir(_args(out=str(done), overwrite=True), "two_styles") == done
    (done / "record.json").write_text('{"setting": "quick"}')
    assert c.out_dir(_args(out=str(done), quick=True), "two_styles") == done  # quick over quick: fine


def test_a_rerun_into_committed_results_is_refused_in_one_line(tmp_path):
    out = tmp_path / "two_styles"
    out.mkdir()
    (out / "record.json").write_text('{"setting": "full"}')
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "two_styles.py"), "--weights", "random",
                           "--device", "cpu", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "already holds results" in proc.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_committed_results_name_no_path_of_the_machine_that_made_them():
    """Every JSON and Markdown file under results/ reads the same on any machine: no absolute path."""
    import re
    found = []
    for f in (ROOT / "results").rglob("*"):
        if f.suffix == ".json":
            found += [(f, s) for s in _strings(json.loads(f.read_text())) if s.startswith("/")]
        elif f.suffix in (".md", ".html") and f.stat().st_size < 2_000_000:
            found += [(f, m) for m in re.findall(r"(?<![\w.:/])/(?:tmp|home|root|work|Users|var)/[^\s<\"']*",
                                                 f.read_text())]
    assert not found, found[:5]


def test_publish_run_makes_a_run_location_independent(tmp_path):
    c = _common()
    from evostyle.search import make_config, run_search
    src = tmp_path / "made-here"
    run_search(make_config({"size": 32, "steps": 2, "popsize": 5, "outputs": 2, "maxiter": 0, "weights": "random",
                            "device": "cpu", "content": str(ROOT / "experiments" / "images" / "coffee.jpg")}),
               src, quiet=True, report=False)
    dest = c.publish_run(src, tmp_path / "published")
    for name in ("config.json", "summary.json", "summary.md", "report.html"):
        text = (dest / name).read_text()
        assert str(src) not in text and str(ROOT) not in text, name
    assert json.loads((dest / "config.json").read_text())["config"]["run"]["content"] == "experiments/images/coffee.jpg"
    assert not (dest / ".evostyle-run").exists() and (dest / "candidates.csv").is_file()


def test_diversity_quick_compares_every_lever_and_optimiser(tmp_path):
    """experiments/diversity.py --quick: every method runs from the same start at the same budget, and
    the table carries the normalised hypervolume's median, IQR and Holm-corrected p for each."""
    out = tmp_path / "diversity"
    _quick("diversity", out)
    methods = pd.read_csv(out / "methods.csv")
    assert len(methods) == 9 and methods.evaluations.nunique() == 1  # equal budgets
    assert (methods.hypervolume >= 0).all() and methods.hypervolume.max() <= 1.1 ** 2 + 1e-9
    assert (methods.front_diversity_smooth <= methods.max_diversity_pixel + 1e-9).all()  # pooling only removes
    assert (methods.knee_diversity_pixel <= methods.max_diversity_pixel + 1e-9).all()
    lone = {"rotation / gde3", "diversity_loss / gde3"}  # nothing in them depends on the seed
    assert (methods[methods.method.isin(lone)].knee_floor_pixel == 0).all()
    assert (methods.knee_floor_feature >= 0).all() and methods.knee_floor_pixel.max() > 0  # noise has one
    text = (out / "table.md").read_text()
    assert "rotation / gde3" in text and "all / tpe" in text and "p (Holm)" in text and "Speckle-discounted" in text
    assert "Diversity beside its noise floor" in text and "feature floor" in text
    rec = json.loads((out / "record.json").read_text())
    assert rec["metric"] == "feature" and rec["weights"]["used"] == "random"
    assert (out / "anytime.png").is_file() and (out / "grid.jpg").stat().st_size > 1000


def test_fidelity_correlation_quick_scores_every_checkpoint_of_one_continued_transfer(tmp_path):
    """experiments/fidelity_correlation.py --quick: each cheap fidelity ranked against the full one."""
    out = tmp_path / "fc"
    _quick("fidelity_correlation", out)
    scores = pd.read_csv(out / "scores.csv")
    assert sorted(scores.steps.unique()) == [1, 2, 4, 8] and scores.groupby("fidelity_level").size().nunique() == 1
    corr = pd.read_csv(out / "correlations.csv")
    assert set(corr.fidelity) == {"12% of the steps", "25% of the steps", "50% of the steps", "half size (16 px)"}
    assert corr.spearman.between(-1, 1).all() and corr.kendall.between(-1, 1).all()
    assert "best third kept" in (out / "table.md").read_text() and (out / "correlation.png").is_file()


def test_multifidelity_quick_spends_equal_image_steps_and_scores_full_transfers(tmp_path):
    """experiments/multifidelity.py --quick: DEHB, DE and random search at the same image-steps."""
    out = tmp_path / "mf"
    _quick("multifidelity", out)
    runs = pd.read_csv(out / "runs.csv").set_index("method")
    assert set(runs.index) == {"dehb", "gde3", "random"}
    assert runs.image_steps["dehb"] <= runs.image_steps["random"] == runs.image_steps["gde3"]  # never more
    assert runs.full_transfers["dehb"] < runs.full_transfers["random"]  # the rest ran at lower budgets
    assert runs.share_to_random_final["random"] == 1.0
    anytime = pd.read_csv(out / "anytime.csv")
    assert (anytime.groupby("method").image_steps.apply(lambda s: s.is_monotonic_increasing)).all()
    assert "within 1/3" in (out / "table.md").read_text() and (out / "anytime.png").is_file()


def test_multifidelity_over_a_ladder_gives_each_method_the_same_full_size_budget(tmp_path):
    """--scales: DEHB and random search with one scale and over the ladder, a coarse step counted as
    the share of the output's pixels it works on; no method spends more than random search."""
    sys.path.insert(0, str(ROOT / "experiments"))
    from multifidelity import LADDER_METHODS, ladder_cost, ladder_shares
    s = {"size": 32, "steps": 9, "scales": [24]}
    assert ladder_shares(s) == [(4, 0.5625), (5, 1.0)]
    assert ladder_cost(s) == 4 * 0.5625 + 5 and ladder_cost(s, 0, 4) == 2.25 and ladder_cost(s, 4, 9) == 5
    out = tmp_path / "mfs"
    _quick("multifidelity", out, 600, "--scales", "24", "--runs", str(tmp_path / "runs"))
    runs = pd.read_csv(out / "runs.csv").set_index("method")
    assert set(runs.index) == set(LADDER_METHODS)
    assert (runs.image_steps <= runs.image_steps["random"]).all()
    ladder = pd.read_csv(tmp_path / "runs" / "astronaut-scream-0-dehb-scales" / "candidates.csv")
    assert set(ladder.scale) == {24, 32} and set(ladder[ladder.scale == 24].steps) == {4}
    assert runs.full_transfers["dehb-scales"] == (ladder.scale == 32).sum()
    assert "random-scales" in (out / "table.md").read_text()


def test_multifidelity_gives_dehb_no_more_steps_than_the_full_searches():
    """brackets_for counts the first cycle's promotions as continued and later cycles' DE trials from
    scratch, as DEHB spends them (the first version counted both as continued: 5% over budget)."""
    sys.path.insert(0, str(ROOT / "experiments"))
    from multifidelity import bracket_cost, brackets_for

    from evostyle.de.schedule import Schedule
    s = Schedule(7, 27, 3)  # levels 9 and 27
    assert [bracket_cost(s, i) for i in range(4)] == [3 * 9 + 1 * 18, 2 * 27, 3 * 9 + 1 * 27, 2 * 27]
    n = brackets_for(972, s)
    assert sum(bracket_cost(s, i) for i in range(n)) <= 972 < sum(bracket_cost(s, i) for i in range(n + 1))


def test_coarse_to_fine_quick(tmp_path):
    out = tmp_path / "c2f"
    _quick("coarse_to_fine", out, timeout=300)
    runs = pd.read_csv(out / "runs.csv")
    assert runs.method.tolist() == ["one scale", "ladder", "one scale, ladder's time"]
    assert runs.scales.tolist()[:2] == ["64", "32 64"] and (runs.steps[:2] == 6).all()
    assert (runs.failed == 0).all() and (runs.total > 0).all()
    assert runs.steps[2] >= 1  # the steps that fit in the ladder's time (timing: not asserted on a shared CPU)
    assert "total / one scale" in (out / "table.md").read_text()


def test_run_or_resume_reads_a_finished_run_of_the_same_config_without_replaying_it(tmp_path, monkeypatch):
    """An experiment's finished runs are read as they are (a run made by an earlier version of an
    optimiser would not replay); a different config is still checked by a resume, which refuses it."""
    c = _common()
    from evostyle.errors import EvostyleError
    from evostyle.search import make_config, run_search
    cfg = make_config({"size": 32, "steps": 2, "popsize": 5, "outputs": 2, "maxiter": 0, "weights": "random",
                       "device": "cpu"})
    made = run_search(cfg, tmp_path / "run", quiet=True, report=False)
    import evostyle.search.run as run_module
    monkeypatch.setattr(run_module, "run_search", lambda *a, **k: pytest.fail("a finished run was replayed"))
    assert c.run_or_resume(cfg, tmp_path / "run").best == made.best
    monkeypatch.undo()
    with pytest.raises(EvostyleError, match="differs in"):
        c.run_or_resume(make_config({"size": 32, "steps": 3, "popsize": 5, "outputs": 2, "maxiter": 0,
                                     "weights": "random", "device": "cpu"}), tmp_path / "run")
