"""Faults injected where they cannot be made for real: a full disk at every kind of write, a second
process on a locked run, SIGTERM and SIGHUP, an --overwrite of a folder holding a user's file, and
damaged or hand-edited run directories. Each ends with one line, no debris, and a run that resumes."""

import builtins
import contextlib
import errno
import fnmatch
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from evostyle.cli.report import main as report_main
from evostyle.cli.search import main
from evostyle.errors import EvostyleError
from evostyle.rundir.files import LOCK, SECONDS_COLUMN
from evostyle.rundir.reader import load_run

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--size", "32", "--steps", "2", "--popsize", "5", "--outputs", "2", "--maxiter", "2", "--weights", "random",
        "--device", "cpu", "--quiet", "--seed", "4"]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


@contextlib.contextmanager
def disk_full(pattern: str, nth: int = 1):
    """The ``nth`` opening for writing of a file whose name matches ``pattern`` fails with ENOSPC (a
    write of evostyle's own, of PIL's or of matplotlib's: all open through builtins.open)."""
    real, seen = builtins.open, [0]

    def fake(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+") \
                and fnmatch.fnmatch(Path(file).name, pattern):
            seen[0] += 1
            if seen[0] == nth:
                raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return real(file, mode, *args, **kwargs)
    builtins.open, io.open = fake, fake
    try:
        yield seen
    finally:
        builtins.open, io.open = real, real


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(TINY + ["--out", str(out)]) == 0
    return pd.read_csv(out / "candidates.csv").drop(columns=[SECONDS_COLUMN])


def _debris(run: Path) -> list[str]:
    return [str(p) for p in run.rglob("*") if ".tmp" in p.name] if run.exists() else []


# (what fails, file name pattern, which opening of it, phase)
WRITES = [
    ("the marker", "..evostyle-run.tmp*", 1, "create"),
    ("config.json", ".config.json.tmp*", 1, "create"),
    ("the CSV header", ".candidates.csv.tmp*", 1, "create"),
    ("the first state", ".state.json.tmp*", 1, "create"),
    ("the content image", ".content.png.tmp*", 1, "create"),
    ("an output image", ".g001_c003_k1.jpg.tmp*", 1, "run"),
    ("the best outputs", ".output_0.png.tmp*", 1, "run"),
    ("best.json", ".best.json.tmp*", 1, "run"),
    ("candidate rows", "candidates.csv", 2, "run"),
    ("generation rows", "generations.csv", 2, "run"),
    ("the state after a generation", ".state.json.tmp*", 3, "run"),
    ("summary.json", ".summary.json.tmp*", 1, "run"),
    ("a plot", ".plot_pareto.png.tmp*", 1, "report"),
    ("report.html", ".report.html.tmp*", 1, "report"),
    ("summary.md", ".summary.md.tmp*", 1, "report"),
]


@pytest.mark.parametrize("what,pattern,nth,phase", WRITES, ids=[w[0] for w in WRITES])
def test_full_disk_at_every_write(tmp_path, capsys, reference, what, pattern, nth, phase, one_line):
    run = tmp_path / "run"
    with disk_full(pattern, nth) as seen:
        line = one_line(main, TINY + ["--out", str(run)], 1)
    assert seen[0] >= nth, f"{what} was never written"
    assert "no space left on device" in line and "Traceback" not in line
    assert not _debris(run), _debris(run)
    if phase == "create":  # nothing that looks like a run is left; the same command then works
        assert not run.exists()
        assert "run the command again" in line
        assert main(TINY + ["--out", str(run)]) == 0
    elif phase == "run":  # the state says failed; --resume completes it, equal to an uninterrupted run
        state = json.loads((run / "state.json").read_text())
        assert state["status"] == "failed" and "No space left" in state["error"]
        assert f"--resume {run}" in line
        assert main(["--resume", str(run), "--quiet"]) == 0
    else:  # the run itself finished; the report can be rebuilt
        assert json.loads((run / "state.json").read_text())["status"] == "finished"
        assert f"python -m evostyle.report {run}" in line
        assert report_main([str(run)]) == 0 and (run / "report.html").is_file()
    pd.testing.assert_frame_equal(pd.read_csv(run / "candidates.csv").drop(columns=[SECONDS_COLUMN]), reference)


def test_overwrite_deletes_only_the_runs_own_files(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(TINY + ["--maxiter", "0", "--out", str(run)]) == 0
    (run / "notes.txt").write_text("my notes")
    (run / "images" / "my_sketch.jpg").write_bytes(b"mine")
    capsys.readouterr()
    assert main(TINY + ["--maxiter", "0", "--out", str(run), "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "kept 2 file(s) evostyle did not write: images/my_sketch.jpg, notes.txt" in err
    assert (run / "notes.txt").read_text() == "my notes" and (run / "images" / "my_sketch.jpg").read_bytes() == b"mine"
    assert json.loads((run / "state.json").read_text())["status"] == "finished"


def test_overwrite_refuses_a_folder_evostyle_did_not_make(tmp_path, capsys, one_line):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"my": "own config"}')
    (folder / "photo.jpg").write_bytes(b"mine")
    line = one_line(main, TINY + ["--out", str(folder), "--overwrite"], 2)
    assert "does not hold an evostyle run" in line and "--overwrite only replaces an evostyle run" in line
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "photo.jpg"]  # untouched, no lock file
    assert (folder / "config.json").read_text() == '{"my": "own config"}'


def _hold_lock(run: Path):
    code = ("import sys, time; from evostyle.rundir.lock import RunLock; "
            "lock = RunLock(sys.argv[1], 'search').acquire(); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run)], env=_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_on_a_locked_run_is_refused_with_the_holders_pid(tmp_path, capsys, one_line):
    run = tmp_path / "run"
    assert main(TINY + ["--maxiter", "0", "--out", str(run)]) == 0
    state = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text(json.dumps({**state, "status": "running"}))  # as if mid-run
    holder = _hold_lock(run)
    try:
        line = one_line(main, ["--resume", str(run)], 2)
        assert f"is in use by process {holder.pid} (search" in line
        line = one_line(report_main, [str(run)], 2)
        assert f"process {holder.pid}" in line
        line = one_line(main, TINY + ["--out", str(run), "--overwrite"], 2)
        assert f"process {holder.pid}" in line
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (killed): the lock went with it, and the run reads as interrupted
    assert report_main([str(run)]) == 0
    assert "interrupted (the process that ran it is gone" in (run / "report.html").read_text()
    assert main(["--resume", str(run), "--quiet"]) == 0
    assert not (run / LOCK).exists()  # a clean end leaves no lock file behind


def test_a_lock_taken_on_a_file_its_last_holder_removed_is_retaken_on_the_new_one(tmp_path, monkeypatch):
    """The race a removed lock file opens: a process that opened the file before its holder unlinked it
    would lock a file no path names while a third process locks a new one. It lets go and retries."""
    from evostyle.rundir import lock as lk
    real, calls = lk._names, []

    def replaced_once(path, f):
        calls.append(path)
        return real(path, f) and len(calls) > 1  # the first file we locked was "unlinked" meanwhile
    monkeypatch.setattr(lk, "_names", replaced_once)
    held = lk.RunLock(tmp_path, "search").acquire()
    assert len(calls) == 2 and real(tmp_path / LOCK, held._file)
    with pytest.raises(EvostyleError, match="is in use by process"):
        lk.RunLock(tmp_path, "report").acquire()
    held.release()
    assert not (tmp_path / LOCK).exists()
    assert not lk.is_locked(tmp_path) and not (tmp_path / LOCK).exists()  # asking does not make the file again


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_cleanly_and_resume(tmp_path, sig):
    run = tmp_path / "run"
    args = [a if a != "2" or i != TINY.index("--maxiter") + 1 else "40" for i, a in enumerate(TINY)]
    proc = subprocess.Popen([sys.executable, "-m", "evostyle.search", *args, "--out", str(run)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "generations.csv").exists() or len((run / "generations.csv").read_text().splitlines()) < 2:
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig
    assert f"interrupted ({signal.Signals(sig).name})" in err and f"--resume {run}" in err and "Traceback" not in err
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "interrupted" and state["signal"] == signal.Signals(sig).name
    done = state["generations_done"]
    assert 1 <= done < 41 and len(pd.read_csv(run / "candidates.csv")) == 5 * done
    assert not _debris(run)


DAMAGE = [
    ("candidates.csv", "missing", "candidates.csv"),
    ("candidates.csv", "garbage", "candidates.csv"),
    ("candidates.csv", "truncated", "candidates.csv"),
    ("generations.csv", "missing", "generations.csv"),
    ("config.json", "garbage", "config.json"),
    ("config.json", "edited", "config.json"),
    ("state.json", "garbage", "state.json"),
    (".evostyle-run", "missing", ".evostyle-run"),
    ("summary.json", "garbage", "summary.json"),
]


def _damage(run: Path, name: str, how: str) -> None:
    path = run / name
    if how == "missing":
        path.unlink()
    elif how == "garbage":
        path.write_bytes(b"\x00\x01 this is not what evostyle wrote {\n")
    elif how == "truncated":
        text = path.read_text()
        path.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])
    elif how == "edited":
        rec = json.loads(path.read_text())
        rec["config"]["steps"] = 99
        path.write_text(json.dumps(rec))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("done") / "run"
    assert main(TINY + ["--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("name,how,named", DAMAGE, ids=[f"{d[1]} {d[0]}" for d in DAMAGE])
def test_damaged_runs_give_one_line_naming_the_file(tmp_path, capsys, finished_run, name, how, named):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    if name != "summary.json":  # a resume then has work to do (a finished one only reads summary.json)
        state = json.loads((run / "state.json").read_text())
        (run / "state.json").write_text(json.dumps({**state, "status": "interrupted"}))
    _damage(run, name, how)
    results = []
    for tool, argv in (("resume", ["--resume", str(run), "--quiet"]), ("report", [str(run)])):
        fn = main if tool == "resume" else report_main
        try:
            rc = fn(argv)
        except SystemExit as exc:
            rc = exc.code
        results.append((tool, rc, capsys.readouterr().err.strip().splitlines()))
    try:
        load_run(run)
        results.append(("load_run", 0, []))
    except Exception as exc:
        results.append(("load_run", type(exc).__name__, [str(exc)]))
    for tool, rc, err in results:
        if rc == 0:  # tolerated: this tool does not need that file (e.g. the report and a resume state)
            continue
        assert rc in (2, "EvostyleError"), (tool, rc, err)
        assert len(err) == 1 and named in err[0] and "Traceback" not in err[0], (tool, err)
    # noticed: refused, or (a log cut short) recovered with a warning naming the file
    assert any(rc != 0 or any(named in e for e in err) for _, rc, err in results), f"no tool noticed the {how} {name}"
    if (name, how) == ("config.json", "edited"):
        assert results[0][1] == 2 and "was changed after the run started" in results[0][2][0]


def test_resume_of_a_finished_run_leaves_it_alone(tmp_path, finished_run, capsys):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".evostyle-lock"}
    assert main(["--resume", str(run)]) == 0
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".evostyle-lock"}
    assert before == after  # timings, summary and report untouched
    assert "already finished" in capsys.readouterr().err


def test_json_files_are_strict_and_read_back(tmp_path):
    from evostyle.io.atomic import atomic_write_json, read_json
    atomic_write_json(tmp_path / "x.json", {"a": float("inf"), "b": [1.0, float("nan")], "c": {"d": -float("inf")}})
    text = (tmp_path / "x.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    back = read_json(tmp_path / "x.json")
    assert back["a"] == float("inf") and back["b"][1] != back["b"][1] and back["c"]["d"] == -float("inf")


def test_every_json_of_a_run_is_strict(finished_run):
    for path in list(finished_run.glob("*.json")) + list(finished_run.glob("best/*.json")) + \
            [finished_run / ".evostyle-run"]:
        json.loads(path.read_text(), parse_constant=lambda c, name=path.name: pytest.fail(f"{name}: {c}"))


def test_exif_orientation_is_honoured(tmp_path):
    from PIL import Image

    from evostyle.io.images import image_size, load_image
    im = Image.new("RGB", (40, 20), "white")
    im.paste((255, 0, 0), (0, 0, 10, 20))  # a red strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to show upright
    im.save(tmp_path / "phone.jpg", exif=exif.tobytes())
    img = load_image(tmp_path / "phone.jpg")
    assert img.shape == (3, 40, 20)  # upright: taller than wide
    assert img[0, :10].mean() > 0.8 and img[1, :10].mean() < 0.3  # the red strip is now at the top
    assert image_size(tmp_path / "phone.jpg") == (40, 20)  # the header's own size, before the turn


def test_a_population_too_large_for_host_memory_is_chunked_or_refused(tmp_path, capsys, monkeypatch, one_line):
    from evostyle.network.backbones import BACKBONES
    from evostyle.transfer import run as transfer
    per_row = BACKBONES.get("vgg19").activation_values((21, 32), "relu5_1") * transfer.BYTES_PER_VALUE  # a 32 px row
    monkeypatch.setattr(transfer, "available_host_memory", lambda: int(3.5 * per_row / transfer.HOST_MEMORY_SHARE))
    run = tmp_path / "run"
    # 10 rows; 3 fit, and a chunk holds whole candidates (the inner reward couples a candidate's 2 outputs)
    assert main(TINY + ["--maxiter", "0", "--out", str(run)]) == 0
    assert pd.read_csv(run / "generations.csv").chunk_size.tolist() == [2]
    assert "would not fit in the host's memory; running 2 at a time" in capsys.readouterr().err
    monkeypatch.setattr(transfer, "available_host_memory", lambda: int(0.5 * per_row))
    line = one_line(main, TINY + ["--out", str(tmp_path / "big")], 1)
    assert "needs about" in line and "GiB are available; lower --size" in line
    assert not (tmp_path / "big").exists()  # refused before anything was written
