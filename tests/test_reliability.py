"""Interruption, numerical failure and resource limits."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from evostyle.search.config import make_config
from evostyle.search.run import run_search

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import kill_resume  # noqa: E402


def test_sigkill_at_random_moments_then_resume(tmp_path):
    ref = tmp_path / "ref"
    t0 = time.perf_counter()
    subprocess.run(kill_resume._cmd(*kill_resume.ARGS, "--out", str(ref)), env=kill_resume._env(), check=True,
                   stdout=subprocess.DEVNULL)
    ref_s = time.perf_counter() - t0
    rng = random.Random(1)
    total_kills = 0
    for t in range(2):
        work = tmp_path / f"t{t}"
        work.mkdir()
        ok, kills = kill_resume.trial(ref, work, rng, max_delay=0.9 * ref_s)
        assert ok
        total_kills += kills
    assert total_kills >= 1
    df = pd.read_csv(tmp_path / "t0" / "run" / "candidates.csv")
    assert df.groupby("generation").size().tolist() == [5] * 5  # every generation exactly once


def test_ctrl_c_stops_after_generation_and_prints_resume(tmp_path):
    run = tmp_path / "run"
    args = [a if a != "4" else "30" for a in kill_resume.ARGS]  # many generations
    proc = subprocess.Popen(kill_resume._cmd(*args, "--out", str(run)), env=kill_resume._env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not (run / "generations.csv").exists() or len((run / "generations.csv").read_text().splitlines()) < 2:
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"--resume {run}" in err.decode()
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "interrupted"
    df = pd.read_csv(run / "candidates.csv")
    assert len(df) == 5 * state["generations_done"]


def test_numerical_failure_marks_candidate_and_search_goes_on(tmp_path):
    cfg = make_config({"size": 32, "steps": 3, "popsize": 6, "outputs": 2, "maxiter": 1, "weights": "random",
                       "device": "cpu", "seed": 0, "search": ["style_ratio"],
                       "bounds": {"style_ratio": [1e-3, 1e300]}})
    run_search(cfg, tmp_path / "run", quiet=True, report=True)
    df = pd.read_csv(tmp_path / "run" / "candidates.csv")
    failed = df[df.failed]
    assert len(failed) >= 1 and (failed.fitness == float("inf")).all()
    assert (~df.failed).sum() >= 1 and df[~df.failed].fitness.apply(lambda v: v < float("inf")).all()
    assert "failed (NaN/inf loss)" in (tmp_path / "run" / "report.html").read_text()
    assert json.loads((tmp_path / "run" / "state.json").read_text())["status"] == "finished"


def test_out_of_memory_halves_batch_and_search_completes(tmp_path, monkeypatch, caplog):
    import evostyle.transfer.run as tr
    real = tr._optimise_chunk

    def small_gpu(*args):
        if args[5].shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return real(*args)
    monkeypatch.setattr(tr, "_optimise_chunk", small_gpu)
    cfg = make_config({"size": 32, "steps": 2, "popsize": 5, "outputs": 2, "maxiter": 1, "weights": "random",
                       "device": "cpu", "seed": 0})
    run_search(cfg, tmp_path / "run", quiet=True, report=False)
    assert len(pd.read_csv(tmp_path / "run" / "candidates.csv")) == 10
    # 10 -> 5 -> 2, each halving rounded down to whole candidates (the inner reward couples a candidate's
    # 2 outputs): 10 -> 4 -> 2
    assert pd.read_csv(tmp_path / "run" / "generations.csv").chunk_size.tolist() == [2, 2]
    err = "\n".join(r.getMessage() for r in caplog.records if r.name == "evostyle" and r.levelname == "WARNING")
    assert "generation 0: out of memory at 10 rows per chunk; retrying with 4" in err
    assert "generation 0: out of memory at 4 rows per chunk; retrying with 2" in err
    assert "generation 1:" not in err  # the next generation starts at the chunk size that fitted


def test_json_and_state_are_written_atomically(tmp_path, monkeypatch):
    from evostyle.io import atomic as runlog
    calls = []
    real = os.replace

    def spy(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        return real(src, dst)
    monkeypatch.setattr(runlog.os, "replace", spy)
    runlog.atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert calls and calls[0][1] == "x.json" and calls[0][0] != "x.json"
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}


def test_search_where_every_candidate_fails_still_finishes(tmp_path):
    cfg = make_config({"size": 32, "steps": 2, "popsize": 5, "outputs": 2, "maxiter": 1, "weights": "random",
                       "device": "cpu", "seed": 0, "search": ["style_ratio"],
                       "bounds": {"style_ratio": [1e100, 1e300]}})
    summary = run_search(cfg, tmp_path / "run", quiet=True, report=True)
    df = pd.read_csv(tmp_path / "run" / "candidates.csv")
    assert df.failed.all() and summary["best"]["fitness"] == float("inf")
    assert "10 candidate(s) failed" in (tmp_path / "run" / "report.html").read_text()
