"""A run directory that no longer tells the truth about its run: an input file replaced between an
interruption and ``--resume`` (or an extension), and run state that lies or belongs to another run.
Each is refused in one line naming the file (and row) at fault and the way on, or recovered with the
intact rows kept; nothing is scored silently on other inputs or other rows."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evostyle.cli.search import main

TINY = ["--size", "16", "--steps", "2", "--popsize", "5", "--outputs", "2", "--weights", "random", "--device", "cpu",
        "--quiet", "--seed", "7", "--no-report"]


def _image(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((24, 24, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _snapshot(run: Path) -> dict:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.fixture
def inputs(tmp_path):
    """A content and two style images of the test's own, in a folder the test may change."""
    d = tmp_path / "inputs"
    d.mkdir()
    return {"content": _image(d / "content.png", 1), "style_0": _image(d / "a.png", 2),
            "style_1": _image(d / "b.png", 3)}


def _args(inputs, *extra) -> list[str]:
    return [*TINY, "--content", str(inputs["content"]), "--style", str(inputs["style_0"]),
            "--style", str(inputs["style_1"]), *extra]


def _interrupted_run(inputs, run: Path, interrupt_at, capsys, generation: int = 1, maxiter: str = "2") -> Path:
    interrupt_at(generation)
    assert main(_args(inputs, "--maxiter", maxiter, "--out", str(run))) == 130  # as after a Ctrl-C
    interrupt_at(None)
    assert "--resume" in capsys.readouterr().err
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "interrupted" and state["generations_done"] == generation
    return run


# ------------------------------------------------------------------ class 1: inputs that change under a run

def test_inputs_are_fingerprinted_when_the_run_starts(tmp_path, inputs):
    from evostyle.network.state import file_sha256
    run = tmp_path / "run"
    assert main(_args(inputs, "--maxiter", "0", "--out", str(run))) == 0
    recorded = json.loads((run / "config.json").read_text())["inputs"]
    assert set(recorded) == {"content", "style_0", "style_1"}  # random weights: no file to fingerprint
    for role, path in inputs.items():
        assert recorded[role] == {"path": str(path), "sha256": file_sha256(path)}


@pytest.mark.parametrize("which", ["content", "style_1"])
def test_an_input_replaced_before_resume_is_refused_naming_it_then_accepted_deliberately(
        tmp_path, capsys, inputs, interrupt_at, which, one_line):
    run = _interrupted_run(inputs, tmp_path / "run", interrupt_at, capsys)
    _image(inputs[which], 99)  # another picture at the same path
    before = _snapshot(run)
    line = one_line(main, ["--resume", str(run), "--quiet"])
    words = {"content": "content image", "style_1": "style image 1"}[which]
    assert f"the {words} {inputs[which]} changed" in line and "--accept-changed-inputs" in line
    assert _snapshot(run) == before  # refused before anything was written, not even a lock file
    assert main(["--resume", str(run), "--quiet", "--accept-changed-inputs", "--no-report"]) == 0
    rec = json.loads((run / "config.json").read_text())
    from evostyle.network.state import file_sha256
    assert rec["inputs"][which]["sha256"] == file_sha256(inputs[which])
    (change,) = rec["input_changes"]
    assert change["input"] == which and change["generations_done"] == 1
    assert change["sha256_from"] != change["sha256_to"]
    assert json.loads((run / "state.json").read_text())["status"] == "finished"


def test_an_extension_checks_the_inputs_too_and_an_unchanged_touch_passes(tmp_path, capsys, inputs, one_line):
    run = tmp_path / "run"
    assert main(_args(inputs, "--maxiter", "0", "--out", str(run))) == 0
    inputs["style_0"].write_bytes(inputs["style_0"].read_bytes())  # rewritten, same bytes: not a change
    _image(inputs["content"], 5)
    line = one_line(main, ["--resume", str(run), "--maxiter", "1", "--quiet"])
    assert "content image" in line and "--accept-changed-inputs" in line and "style image" not in line
    _image(inputs["content"], 1)  # the original back: the extension goes on
    assert main(["--resume", str(run), "--maxiter", "1", "--quiet", "--no-report"]) == 0
    assert "input_changes" not in json.loads((run / "config.json").read_text())


def test_a_weights_file_replaced_before_an_extension_is_refused(tmp_path, capsys, inputs, one_line):
    from torchvision.models import vgg16
    weights = tmp_path / "inputs" / "vgg16.pt"
    sd = vgg16(weights=None).features.state_dict()
    torch.save(sd, weights)
    run = tmp_path / "run"
    args = [a if a != "random" else str(weights) for a in _args(inputs, "--maxiter", "0", "--out", str(run))]
    assert main(args) == 0
    rec = json.loads((run / "config.json").read_text())
    assert rec["inputs"]["weights"]["sha256"] == rec["weights"]["sha256"]  # the provenance's own digest, reused
    sd["0.bias"][0] += 1.0
    torch.save(sd, weights)
    line = one_line(main, ["--resume", str(run), "--maxiter", "1", "--quiet"])
    assert f"the weights file {weights} changed" in line and "--accept-changed-inputs" in line


def test_the_python_api_takes_accept_changed_inputs(tmp_path, capsys, inputs, interrupt_at):
    from evostyle.errors import EvostyleError
    from evostyle.search import resume_search
    run = _interrupted_run(inputs, tmp_path / "run", interrupt_at, capsys)
    _image(inputs["style_0"], 42)
    with pytest.raises(EvostyleError, match="accept_changed_inputs=True"):
        resume_search(run, quiet=True, report=False)
    assert resume_search(run, quiet=True, report=False, accept_changed_inputs=True).best is not None


def test_a_run_without_fingerprints_still_resumes(tmp_path, capsys, inputs, interrupt_at):
    run = _interrupted_run(inputs, tmp_path / "run", interrupt_at, capsys)
    rec = json.loads((run / "config.json").read_text())
    del rec["inputs"]  # as a run written before evostyle recorded them
    (run / "config.json").write_text(json.dumps(rec))
    _image(inputs["content"], 8)
    assert main(["--resume", str(run), "--quiet", "--no-report"]) == 0


def test_accept_changed_inputs_without_resume_is_refused(tmp_path, capsys, inputs, one_line):
    line = one_line(main, _args(inputs, "--maxiter", "0", "--out", str(tmp_path / "run"),
                                   "--accept-changed-inputs"))
    assert "--resume only" in line and not (tmp_path / "run").exists()


# ------------------------------------------------------------------ class 2: run state that lies or is another run's

def _frame(run: Path):
    import pandas as pd
    return pd.read_csv(run / "candidates.csv").drop(columns=["gen_seconds_per_candidate"])


@pytest.fixture(scope="module")
def sample_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    return {"content": _image(d / "content.png", 1), "style_0": _image(d / "a.png", 2),
            "style_1": _image(d / "b.png", 3)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sample_inputs):
    """The uninterrupted run (4 generations) every recovered run must equal."""
    run = tmp_path_factory.mktemp("ref") / "run"
    assert main(_args(sample_inputs, "--maxiter", "3", "--out", str(run))) == 0
    return run


def _interrupted_once(tmp_path_factory, sample_inputs, name: str, *extra: str) -> Path:
    """A run of 4 generations interrupted (as by a Ctrl-C) after 3 of them, made once per module."""
    from evostyle.search.problem import SearchProblem
    real, run = SearchProblem._evaluate, tmp_path_factory.mktemp(name) / "run"

    def stop(self, g, unit, *fidelity):
        if g == 3:
            raise KeyboardInterrupt("simulated kill")
        return real(self, g, unit, *fidelity)
    SearchProblem._evaluate = stop
    try:
        assert main([*_args(sample_inputs, "--maxiter", "3", "--out", str(run)), *extra]) == 130
    finally:
        SearchProblem._evaluate = real
    return run


@pytest.fixture(scope="module")
def part_once(tmp_path_factory, sample_inputs):
    return _interrupted_once(tmp_path_factory, sample_inputs, "part")


@pytest.fixture
def part(tmp_path, part_once):
    """A copy of a run of the reference's settings interrupted after 3 of its 4 generations."""
    shutil.copytree(part_once, tmp_path / "run")
    return tmp_path / "run"


def _state(run: Path) -> dict:
    return json.loads((run / "state.json").read_text())


def _edit_state(run: Path, **changes) -> None:
    (run / "state.json").write_text(json.dumps({**_state(run), **changes}))


def test_a_state_edited_to_finished_early_is_resumed_not_believed(tmp_path, capsys, sample_inputs, interrupt_at,
                                                                  reference):
    from evostyle.cli.report import main as report_main
    run = _interrupted_run(sample_inputs, tmp_path / "run", interrupt_at, capsys, generation=1, maxiter="3")
    _edit_state(run, status="finished")
    with pytest.raises(SystemExit) as exc:  # the report: one line saying what is wrong and to resume
        report_main([str(run)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1
    assert "state.json says the run finished" in err[0] and "summary.json is missing" in err[0]
    assert f"--resume {run}" in err[0]
    assert main(["--resume", str(run), "--quiet", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert err.count("says the run finished") == 1 and "resuming it" in err
    assert _state(run)["status"] == "finished" and _state(run)["generations_done"] == 4
    assert _frame(run).equals(_frame(reference))


@pytest.mark.parametrize("value", [-1, True, "3", 2.5], ids=["-1", "true", "a string", "a fraction"])
def test_a_generation_count_no_run_writes_is_refused_naming_it(part, capsys, value, one_line):
    _edit_state(part, generations_done=value)
    before = _snapshot(part)
    line = one_line(main, ["--resume", str(part), "--quiet"])
    assert "state.json is corrupt: generations_done is " + json.dumps(value) in line and "0 or more" in line
    assert _snapshot(part) == before  # no logged row discarded


def test_a_count_larger_than_the_rows_vouched_for_is_refused(part, capsys, one_line):
    _edit_state(part, generations_done=4)
    line = one_line(main, ["--resume", str(part), "--quiet"])
    assert "state.json counts 4 generation(s) but vouches for 3 generation(s) of candidates.csv" in line


@pytest.fixture(scope="module")
def other(tmp_path_factory, sample_inputs):
    """A run with other settings and the same seed, interrupted at the same point."""
    return _interrupted_once(tmp_path_factory, sample_inputs, "other", "--steps", "3")


def test_the_rows_of_another_run_copied_in_are_refused(part, other, capsys, one_line):
    for name in ("candidates.csv", "generations.csv"):
        shutil.copy(other / name, part / name)
    before = _snapshot(part)
    line = one_line(main, ["--resume", str(part), "--quiet"])
    assert "candidates.csv lines 2-6 (generation 0) are not the rows this run wrote" in line
    assert "another run's" in line
    assert _snapshot(part) == before
    shutil.copy(other / "state.json", part / "state.json")  # its state too: the run id gives it away
    line = one_line(main, ["--resume", str(part), "--quiet"])
    assert "state.json belongs to another run" in line


def test_a_spreadsheet_re_save_or_one_edited_value_is_named_as_a_change(part, capsys, one_line):
    import pandas as pd
    path = part / "candidates.csv"
    original = path.read_bytes()
    pd.read_csv(path).to_csv(path, index=False, lineterminator="\r\n")  # what a spreadsheet's "save" does
    line = one_line(main, ["--resume", str(part), "--quiet"])
    assert "candidates.csv" in line and "changed after the run wrote it" in line
    assert "settings or library versions" not in line
    lines = original.decode().split("\n")
    lines[8] = lines[8].replace("0.", "0.9", 1)  # one value of generation 1, third row
    path.write_text("\n".join(lines))
    line = one_line(main, ["--resume", str(part), "--quiet"])
    assert "candidates.csv lines 7-11 (generation 1)" in line


@pytest.mark.parametrize("cut", ["generations.csv mid-row", "candidates.csv mid-row", "candidates.csv at a line end",
                                 "generations.csv to its header"])
def test_a_log_cut_short_keeps_its_whole_rows_and_resumes(part, capsys, reference, cut):
    name, how = cut.split(" ", 1)
    path = part / name
    text = path.read_text()
    lines = text.split("\n")
    if how == "mid-row":  # half of generation 2's (last) row of generations.csv, or candidate row 2 of 5
        at = 3 if name == "generations.csv" else 12
        path.write_text("\n".join(lines[:at]) + "\n" + lines[at][: len(lines[at]) // 2])
    elif how == "at a line end":  # generation 2's last two candidate rows gone
        path.write_text("\n".join(lines[:-3]) + "\n")
    else:
        path.write_text(lines[0] + "\n")
    assert main(["--resume", str(part), "--quiet", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert str(path) in err and "whole generation(s) before it are kept" in err and "start a new run" not in err
    if how == "mid-row":
        assert "cut short at line" in err
    assert _frame(part).equals(_frame(reference))


def test_a_run_finished_after_a_signal_no_longer_records_it(part):
    assert _state(part)["signal"] == "SIGINT"
    assert main(["--resume", str(part), "--quiet", "--no-report"]) == 0
    state = _state(part)
    assert state["status"] == "finished" and "signal" not in state and "error" not in state


def test_a_state_written_before_the_rows_were_vouched_for_still_resumes(part, reference):
    state = _state(part)
    del state["rows"], state["run_id"]  # as evostyle wrote it before this check
    (part / "state.json").write_text(json.dumps(state))
    assert main(["--resume", str(part), "--quiet", "--no-report"]) == 0
    assert _frame(part).equals(_frame(reference))


def test_rows_that_are_not_digest_pairs_are_refused_in_one_line(part, capsys, one_line):
    """state.json's ``rows`` edited into something evostyle never writes: one line, not a TypeError."""
    _edit_state(part, rows={"candidates.csv": "all good", "generations.csv": []})
    line = one_line(main, ["--resume", str(part), "--quiet"])
    assert "rows are not the [lines, digest] pairs evostyle writes" in line


def test_a_cut_inside_a_rows_first_field_is_a_cut_not_an_edit(tmp_path):
    """``12,0,...`` cut to ``1`` must not read as a row of generation 1 (and so as an edited file)."""
    from evostyle.rundir.log import RunLog
    lines = [(2, "10,0,a\n", ["10", "0", "a"]), (3, "11,0,b\n", ["11", "0", "b"]), (4, "1", ["1"])]
    groups = RunLog._generations(tmp_path / "candidates.csv", lines, 4, 3)
    assert [g for g, _ in groups] == [10, 11]


def test_a_bundled_sample_is_fingerprinted_under_its_own_name(tmp_path):
    """The file hashed is the sample's, the path recorded is the config's ``sample:`` spelling: a run
    directory names no path of the machine that made it unless the user gave one."""
    from evostyle.io.samples import sample_image
    from evostyle.network.state import file_sha256
    run = tmp_path / "run"
    assert main([*TINY, "--content", "sample:cat.jpg", "--style", "sample:starry_night.jpg", "--maxiter", "0",
                 "--search", "angles", "--size", "32", "--out", str(run)]) == 0
    recorded = json.loads((run / "config.json").read_text())["inputs"]
    assert recorded["content"] == {"path": "sample:cat.jpg", "sha256": file_sha256(sample_image("cat.jpg"))}
    assert recorded["style_0"]["path"] == "sample:starry_night.jpg"


def test_an_accepted_change_keeps_the_inputs_recorded_spelling():
    """Accepting a changed sample records its new digest under the name the run recorded, not the
    resolved file (which would name the machine's paths in config.json)."""
    from evostyle.rundir.record import accepted_inputs
    record = {"inputs": {"content": {"path": "sample:cat.jpg", "sha256": "old"}}}
    after = accepted_inputs(record, [("content", "/site-packages/evostyle/data/cat.jpg", "old", "new")], 2)
    assert after["inputs"]["content"] == {"path": "sample:cat.jpg", "sha256": "new"}
    assert after["input_changes"][0]["path"] == "sample:cat.jpg" and record["inputs"]["content"]["sha256"] == "old"
