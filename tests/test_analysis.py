"""Runs in pandas: one run with its config and searched parameters at hand, several runs compared."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import evostyle
from evostyle.errors import EvostyleError
from evostyle.rundir.files import SECONDS_COLUMN
from evostyle.search import make_config, run_search


def _cfg(**kw):
    base = dict(size=32, steps=2, popsize=5, outputs=2, maxiter=1, weights="random", device="cpu", seed=1)
    return make_config({**base, **kw})


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    run_search(_cfg(), root / "a", quiet=True, report=False)
    run_search(_cfg(search=["angles", "rotation_weight"], optimizer="random", seed=2), root / "b", quiet=True,
               report=False)
    return root / "a", root / "b"


def test_load_run_names_what_was_searched_and_its_units(two_runs):
    cands, gens = evostyle.load_run(two_runs[1])
    assert cands.attrs["searched"] == ["angle_0", "angle_1", "rotation_weight"]
    assert cands.attrs["units"]["angle_0"] == "deg" and cands.attrs["units"]["rotation_weight"] == "fraction rotated"
    assert "mix" in cands.attrs["units"] and "mix" not in cands.attrs["searched"]  # fixed ones have units too
    assert cands.attrs["config"]["config"]["de"]["optimizer"] == "random"
    assert SECONDS_COLUMN in cands and "seconds" not in cands


def test_generation_std_is_pandas_std(two_runs):
    cands, gens = evostyle.load_run(two_runs[0])
    ok = cands[cands.fitness < float("inf")]
    pd.testing.assert_series_equal(gens.set_index("generation").gen_std, ok.groupby("generation").fitness.std(),
                                   check_names=False, rtol=1e-12)


def test_load_runs_concatenates_with_a_run_column_and_keeps_each_config(two_runs):
    cands, gens = evostyle.load_runs(two_runs)
    a, b = (evostyle.load_run(p)[0] for p in two_runs)
    assert list(cands.columns[:1]) == ["run"] and list(gens.columns[:1]) == ["run"]
    assert cands.run.value_counts().to_dict() == {"a": len(a), "b": len(b)}
    assert set(gens.run) == {"a", "b"}
    assert cands.attrs["configs"]["b"]["config"]["de"]["optimizer"] == "random"
    assert cands.attrs["searched"] == {"a": a.attrs["searched"], "b": b.attrs["searched"]}
    assert cands.attrs["units"]["angle_1"] == "deg"
    # a parameter only run a searched is still a column; the comparison a user makes works
    best = cands.groupby("run").fitness.min()
    assert best["a"] == a.fitness.min() and best["b"] == b.fitness.min()


def test_load_runs_tells_same_named_runs_apart_and_refuses_duplicates(two_runs, tmp_path):
    import shutil
    other = tmp_path / "elsewhere" / "a"
    shutil.copytree(two_runs[0], other)
    cands, _ = evostyle.load_runs([two_runs[0], other])
    assert set(cands.run) == {str(two_runs[0]), str(other)}
    with pytest.raises(EvostyleError, match="same run twice"):
        evostyle.load_runs([two_runs[0], two_runs[0]])
    with pytest.raises(EvostyleError, match="at least one"):
        evostyle.load_runs([])


def test_a_run_written_with_the_old_seconds_column_loads_and_resumes(tmp_path):
    """Runs written before the time column said what it is (``seconds``) load under the new name and
    resume, appending under their own header."""
    out = tmp_path / "old"
    run_search(_cfg(maxiter=2), tmp_path / "ref", quiet=True, report=False)
    run_search(_cfg(maxiter=2), out, quiet=True, report=False)
    # make it an older, unfinished run: the old header, the last generation not yet done
    csv = out / "candidates.csv"
    lines = csv.read_text().splitlines(keepends=True)
    lines[0] = lines[0].replace(SECONDS_COLUMN, "seconds")
    csv.write_text("".join(lines))
    state = json.loads((out / "state.json").read_text())  # as that version wrote it: no row digests, no run id
    old = {k: v for k, v in state.items() if k not in ("rows", "run_id")}
    (out / "state.json").write_text(json.dumps({**old, "status": "interrupted", "generations_done": 2}))
    cands, _ = evostyle.load_run(out)
    assert SECONDS_COLUMN in cands
    run_search(_cfg(maxiter=2), out, resume=True, quiet=True, report=False)
    assert csv.read_text().splitlines()[0].endswith(",seconds")
    new, ref = (evostyle.load_run(p)[0].drop(columns=[SECONDS_COLUMN]) for p in (out, tmp_path / "ref"))
    pd.testing.assert_frame_equal(new, ref)
