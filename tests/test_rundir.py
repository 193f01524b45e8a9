"""The run directory's one home (evostyle.rundir): runs written by evostyle 0.2 still load, resume and
extend; every file name comes from one module; a generation is written whole or refused."""

import ast
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from evostyle.cli.search import main
from evostyle.rundir import RunDir, files, load_run
from evostyle.rundir.record import plan_of
from evostyle.search.config import make_config
from evostyle.search.run import resume_search, run_search

V0_2 = Path(__file__).parent / "data" / "run_v0_2"
"""A run written by evostyle 0.2 (before the run directory moved and config.json gained ``format`` and
``plan``): 24 px, 2 steps, population 5, maxiter 1, random weights, seed 3."""


@pytest.fixture
def old_run(tmp_path):
    out = tmp_path / "run_v0_2"
    shutil.copytree(V0_2, out)
    return out


def test_a_run_of_evostyle_0_2_loads_and_reads_as_today(old_run):
    rd = RunDir.open(old_run)
    rec = rd.record()
    assert "format" not in rec and "plan" not in rec  # the old layout of config.json
    plan = rd.plan()  # gathered from the top-level keys that held it
    assert plan["strategy"] == "best1bin" and plan["image_size"] == [16, 24] and plan["backbone"] == "vgg19"
    assert plan["compile"]["used"] is False and rd.reference()[1] == 0.0
    cands, gens = load_run(old_run)
    assert len(cands) == 10 and gens.generation.tolist() == [0, 1]
    assert cands.attrs["searched"][:2] == ["angle_0", "angle_1"]
    res = rd.result()
    assert res.fitness == pytest.approx(cands.fitness.min()) and len(res.best_images()) == 2
    assert rd.state()["status"] == "finished" and rd.status() == "finished"


def test_a_run_of_evostyle_0_2_resumes_and_extends(old_run, capsys):
    before = pd.read_csv(old_run / files.CANDIDATES)
    # finished at its own length: nothing to do, nothing written (not even a lock file)
    assert main(["--resume", str(old_run), "--quiet", "--no-report"]) == 0
    assert pd.read_csv(old_run / files.CANDIDATES).equals(before) and not (old_run / files.LOCK).exists()
    # extended by one generation: the logged ones are replayed (their parameters checked), one is added
    assert main(["--resume", str(old_run), "--maxiter", "2", "--quiet"]) == 0
    after = pd.read_csv(old_run / files.CANDIDATES)
    assert after.generation.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    pd.testing.assert_frame_equal(after.iloc[:10].reset_index(drop=True), before)
    rec = json.loads((old_run / files.CONFIG).read_text())
    assert [(e["maxiter_from"], e["maxiter_to"]) for e in rec["extensions"]] == [(1, 2)]
    assert plan_of(rec)["strategy"] == "best1bin"  # still read from the old keys
    summary = json.loads((old_run / files.SUMMARY).read_text())
    assert summary["replayed_generations"] == 2 and summary["optimizer"]["nit"] == 2
    assert (old_run / files.REPORT).is_file()  # the report reads the old record too


def test_extending_an_old_run_equals_a_new_run_of_its_config(old_run, tmp_path):
    """The extension continues the DE exactly where a fresh run of the same config would be: the same
    parameters, generation after generation (scores compared loosely: the fixture was written on
    another machine)."""
    cfg = make_config(json.loads((V0_2 / files.CONFIG).read_text())["config"], {"maxiter": 2})
    fresh = run_search(cfg, tmp_path / "fresh", quiet=True, report=False)
    extended = resume_search(old_run, maxiter=2, quiet=True, report=False)
    a, b = load_run(tmp_path / "fresh")[0], load_run(old_run)[0]
    params = [c for c in a if c.startswith("param_")]
    pd.testing.assert_frame_equal(a[params], b[params], rtol=1e-6)
    assert extended.best["generation"] == fresh.best["generation"] or abs(extended.fitness - fresh.fitness) < 1e-3


def test_resume_search_takes_only_the_settings_a_resume_may_change(old_run):
    from evostyle.errors import EvostyleError
    with pytest.raises(EvostyleError, match="only maxiter, executor, ray_address, ray_actors may change, not steps"):
        resume_search(old_run, steps=4)
    with pytest.raises(EvostyleError, match="not an evostyle run directory"):
        resume_search(old_run.parent)


def test_a_generation_row_must_match_its_columns(tmp_path):
    """A row with a missing or unknown key is a programming error, raised before anything is written
    (it used to be filled with '' or dropped silently)."""
    from evostyle.rundir.log import RunLog
    log = RunLog(tmp_path, ["generation", "candidate", "fitness"]).create()
    gen_row = dict.fromkeys(files.GENERATION_COLUMNS, 0)
    before = (tmp_path / files.CANDIDATES).read_text()
    with pytest.raises(ValueError, match=r"missing \['fitness'\]"):
        log.append_generation([{"generation": 0, "candidate": 0}], gen_row)
    with pytest.raises(ValueError, match=r"unknown \['extra'\]"):
        log.append_generation([{"generation": 0, "candidate": 0, "fitness": 1.0}], {**gen_row, "extra": 1})
    assert (tmp_path / files.CANDIDATES).read_text() == before and log.state["generations_done"] == 0
    log.append_generation([{"generation": 0, "candidate": 0, "fitness": 1.0}], gen_row)
    assert log.state["generations_done"] == 1
    with pytest.raises(ValueError, match="unknown run status"):
        log.write_state(status="done")


def _string_literals(path: Path):
    """(line, text) of every string constant in a module, an f-string's literal parts included."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_the_run_directory_s_file_names_live_in_one_module():
    """No module of evostyle or experiments/ but evostyle/rundir/files.py spells a run directory's
    file name as a value (prose may name them); a renamed file is one line."""
    names = {files.CONFIG, files.CANDIDATES, files.GENERATIONS, files.STATE, files.SUMMARY, files.REPORT,
             files.SUMMARY_MD, files.CONTENT, files.MARKER, files.LOCK, files.BEST_JSON, *files.PLOTS,
             "best/output_", "images/g"}  # (folder names alone are also dict keys: "best", "images")
    repo = Path(__file__).parent.parent
    found = [f"{path.relative_to(repo)}:{line}: {text!r}"
             for path in sorted([*repo.glob("evostyle/**/*.py"), *repo.glob("experiments/*.py")])
             if path.relative_to(repo).as_posix() != "evostyle/rundir/files.py"
             for line, text in _string_literals(path) if text in names]
    assert not found, "file names spelled outside evostyle/rundir/files.py:\n" + "\n".join(found)


def test_a_rundir_object_names_the_run_as_well_as_its_path(old_run, tmp_path):
    """run_search and resume_search take a RunDir as they take a path; one for a folder evostyle did
    not make is refused before anything (a lock file) goes into it."""
    from evostyle.errors import EvostyleError
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("the user's")
    with pytest.raises(EvostyleError, match="not an evostyle run directory"):
        resume_search(RunDir(foreign))
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    res = resume_search(RunDir(old_run), maxiter=2, quiet=True, report=False)
    assert res.optimizer["nit"] == 2
    cfg = make_config(json.loads((V0_2 / files.CONFIG).read_text())["config"], {"maxiter": 0})
    assert run_search(cfg, RunDir(tmp_path / "new"), quiet=True, report=False).path == tmp_path / "new"


def test_the_initial_population_follows_init_and_a_resume_keeps_the_recorded_one(tmp_path):
    """``init`` draws generation 0 (it was ignored before the plan recorded it); a run of evostyle 0.2
    started from a Latin hypercube whatever its config said, and resumes from one."""
    base = dict(size=24, steps=1, popsize=5, outputs=2, maxiter=0, weights="random", device="cpu", seed=2)
    lhs = run_search(make_config(base), tmp_path / "lhs", quiet=True, report=False)
    sobol = run_search(make_config({**base, "init": "sobol"}), tmp_path / "sobol", quiet=True, report=False)
    assert json.loads((tmp_path / "sobol" / files.CONFIG).read_text())["plan"]["init"] == "sobol"
    params = [c for c in lhs.candidates() if c.startswith("param_angle")]
    assert not lhs.candidates()[params].equals(sobol.candidates()[params])
    assert plan_of(json.loads((V0_2 / files.CONFIG).read_text()))["init"] == "latinhypercube"


def test_an_old_run_whose_config_named_another_init_resumes_from_the_latin_hypercube_it_used(old_run):
    from evostyle.rundir.layout import config_hash
    rec = json.loads((old_run / files.CONFIG).read_text())
    rec["config"]["de"]["init"] = "sobol"  # as 0.2 wrote it: the setting was recorded, and ignored
    (old_run / files.CONFIG).write_text(json.dumps(rec))
    marker = json.loads((old_run / files.MARKER).read_text())
    (old_run / files.MARKER).write_text(json.dumps({**marker, "config_sha256": config_hash(rec["config"])}))
    res = resume_search(old_run, maxiter=2, quiet=True, report=False)  # the replay would diverge from sobol
    assert res["replayed_generations"] == 2 and len(res.candidates()) == 15
