"""Every command that writes obeys one ownership rule (:func:`evostyle.rundir.layout.check_ownership`):
a folder evostyle did not make is never written into unless empty, and no file of the user's is
replaced; the temporary files a killed writer leaves are evostyle's own, cleaned up when the folder is
next opened and never named as the user's."""

import json
import shutil
from pathlib import Path

import pytest

from evostyle.bench.cli import main as bench_main
from evostyle.cli.report import main as report_main
from evostyle.cli.search import main
from evostyle.io.atomic import is_temporary, temporary
from evostyle.rundir.files import LOCK, MARKER

TINY = ["--size", "24", "--steps", "2", "--popsize", "5", "--outputs", "2", "--maxiter", "1", "--weights", "random",
        "--device", "cpu", "--quiet", "--seed", "3"]
BENCH = ["--sizes", "16", "--batches", "1", "--steps", "2", "--device", "cpu"]
DEBRIS = (".plot_convergence.png.tmp4242.png", "images/.g001_c000_k0.jpg.tmp77.jpg", ".state.json.tmp9.json")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("done") / "run"
    assert main(TINY + ["--out", str(run), "--no-report"]) == 0  # the report files present are the test's
    return run


@pytest.fixture
def run(tmp_path, finished):
    shutil.copytree(finished, tmp_path / "run")
    return tmp_path / "run"


def _leave_debris(run: Path) -> list[Path]:
    paths = [run / d for d in DEBRIS]
    for p in paths:
        p.write_bytes(b"half of a file")
    return paths


def test_temporary_names_are_the_atomic_writers_own():
    assert is_temporary(temporary(Path("/x/plot_convergence.png")).name)
    assert is_temporary(".g001_c000_k0.jpg.tmp123.jpg") and is_temporary(".summary.md.tmp1.md")
    for name in (".notes.tmp", "plot.png.tmp1.png", ".a.png.tmp1.jpg", ".bashrc", "report.tmp3"):
        assert not is_temporary(name), name  # a user's file stays the user's


@pytest.mark.parametrize("mine", [("summary.md", "report.html"), ("plot_convergence.png",)],
                         ids=["summary.md and report.html", "a plot"])
def test_the_report_replaces_no_file_in_a_folder_without_the_marker(run, capsys, mine, one_line):
    (run / MARKER).unlink()  # a folder evostyle cannot tell it made (or a run older than the marker)
    for name in mine:
        (run / name).write_text(f"the user's own {name}")
    line = one_line(report_main, [str(run)])
    assert f"has no {MARKER}" in line and all(name in line for name in mine) and "move" in line
    assert all((run / name).read_text() == f"the user's own {name}" for name in mine)
    assert not (run / LOCK).exists()
    for name in mine:  # moved away: the report is written, still without a lock file
        (run / name).rename(run.parent / name)
    assert report_main([str(run), "-q"]) == 0 and (run / "report.html").is_file() and not (run / LOCK).exists()


def test_the_bench_writes_into_its_own_folder_only(tmp_path, capsys, one_line):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "bench.md").write_text("my notes on benches")
    line = one_line(bench_main, [*BENCH, "--out", str(mine)])
    assert "not empty and does not hold an evostyle benchmark" in line and "bench.md" in line
    assert (mine / "bench.md").read_text() == "my notes on benches" and len(list(mine.iterdir())) == 1
    out = tmp_path / "bench"
    assert bench_main([*BENCH, "--out", str(out)]) == 0
    assert bench_main([*BENCH, "--out", str(out)]) == 0  # its own earlier benchmark: replaced
    assert json.loads((out / "bench.json").read_text())["rows"]


def test_overwrite_calls_no_temporary_file_the_users_and_removes_them(run, capsys):
    debris = _leave_debris(run)
    (run / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(TINY + ["--out", str(run), "--overwrite", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert err.rstrip().endswith("kept 1 file(s) evostyle did not write: notes.txt"), err
    assert not any(p.exists() for p in debris) and (run / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("opener", ["report", "resume"])
def test_debris_is_cleaned_up_when_the_run_is_next_opened(run, opener):
    debris = _leave_debris(run)
    user = run / ".my.tmp"
    user.write_text("not ours")
    if opener == "report":
        assert report_main([str(run), "-q"]) == 0
    else:  # an extension takes the lock as well
        assert main(["--resume", str(run), "--maxiter", "2", "--quiet", "--no-report"]) == 0
    assert not any(p.exists() for p in debris) and user.read_text() == "not ours"


def test_a_new_run_goes_into_a_folder_holding_only_a_killed_writers_debris(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "..evostyle-run.tmp31337").write_text("{")  # killed while writing the marker (no suffix)
    assert is_temporary("..evostyle-run.tmp31337")
    assert main(TINY + ["--maxiter", "0", "--out", str(out), "--no-report"]) == 0
    assert not (out / "..evostyle-run.tmp31337").exists()


def test_a_users_file_named_like_a_temporary_one_is_never_taken_for_debris(run, capsys):
    """Only a temporary file on its way to one of the run's own files is evostyle's debris: a user's
    ``.notes.txt.tmp1.txt`` (or one in images/) looks alike, and survives a resume, an overwrite and
    the ownership check, which names it as the user's."""
    from evostyle.rundir.layout import RUN, is_debris
    assert is_debris("images/.g001_c000_k0.jpg.tmp77.jpg") and not is_debris(".g001_c000_k0.jpg.tmp77.jpg")
    assert is_debris("..evostyle-run.tmp31337", RUN) and not is_debris(".notes.txt.tmp1.txt")
    mine = [run / ".notes.txt.tmp1.txt", run / "images" / ".sketch.png.tmp2.png"]
    for p in mine:
        p.write_text("the user's")
    assert main(["--resume", str(run), "--maxiter", "2", "--quiet", "--no-report"]) == 0
    assert all(p.read_text() == "the user's" for p in mine)
    assert main(TINY + ["--out", str(run), "--no-report", "--overwrite"]) == 0
    assert all(p.read_text() == "the user's" for p in mine)
    assert ".notes.txt.tmp1.txt" in capsys.readouterr().err  # --overwrite names what it kept
