"""A run directory that no longer tells the truth about its run: an input file replaced between an
interruption and ``--resume`` (or an extension), and run state that lies or belongs to another run.
Each is refused in one line naming the file (and row) at fault and the way on, or recovered with the
intact rows kept; nothing is scored silently on other inputs or other rows."""

import json
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


def _one_line(capsys, argv, code=2) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


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
        tmp_path, capsys, inputs, interrupt_at, which):
    run = _interrupted_run(inputs, tmp_path / "run", interrupt_at, capsys)
    _image(inputs[which], 99)  # another picture at the same path
    before = _snapshot(run)
    line = _one_line(capsys, ["--resume", str(run), "--quiet"])
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


def test_an_extension_checks_the_inputs_too_and_an_unchanged_touch_passes(tmp_path, capsys, inputs):
    run = tmp_path / "run"
    assert main(_args(inputs, "--maxiter", "0", "--out", str(run))) == 0
    inputs["style_0"].write_bytes(inputs["style_0"].read_bytes())  # rewritten, same bytes: not a change
    _image(inputs["content"], 5)
    line = _one_line(capsys, ["--resume", str(run), "--maxiter", "1", "--quiet"])
    assert "content image" in line and "--accept-changed-inputs" in line and "style image" not in line
    _image(inputs["content"], 1)  # the original back: the extension goes on
    assert main(["--resume", str(run), "--maxiter", "1", "--quiet", "--no-report"]) == 0
    assert "input_changes" not in json.loads((run / "config.json").read_text())


def test_a_weights_file_replaced_before_an_extension_is_refused(tmp_path, capsys, inputs):
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
    line = _one_line(capsys, ["--resume", str(run), "--maxiter", "1", "--quiet"])
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


def test_accept_changed_inputs_without_resume_is_refused(tmp_path, capsys, inputs):
    line = _one_line(capsys, _args(inputs, "--maxiter", "0", "--out", str(tmp_path / "run"),
                                   "--accept-changed-inputs"))
    assert "--resume only" in line and not (tmp_path / "run").exists()
