"""The ray executor on a local Ray (2 CPUs, no dashboard): the same candidates.csv as the local executor,
an actor killed mid-generation without losing anything, a run with no actor left stopped as interrupted,
and the one-line message where Ray is not installed."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from evostyle.cli.search import main
from evostyle.errors import EvostyleError
from evostyle.rundir.files import SECONDS_COLUMN
from evostyle.search import make_config, run_search
from evostyle.search.ray_executor import RayExecutor, slice_population
from evostyle.search.signals import Interrupted

try:
    import ray
except ImportError:  # the test extra installs it; CI must run these tests
    if os.environ.get("CI"):
        raise
    ray = None
needs_ray = pytest.mark.skipif(ray is None, reason="Ray is not installed (pip install -e '.[test]')")


def _cfg(**kw):
    """fp64, so that slicing the population changes no bit of any score (rows are independent and a
    batch gives each row exactly what it gets alone in float64; see ray_executor's docstring)."""
    base = dict(size=32, steps=3, popsize=6, outputs=2, maxiter=2, weights="random", device="cpu", seed=3,
                precision="fp64")
    return make_config({**base, **kw})


def _rows(path):
    return pd.read_csv(path / "candidates.csv").drop(columns=[SECONDS_COLUMN])


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The local executor's run, with one thread as each actor has: more threads split a reduction
    differently and change its last bits, which Adam's sign-like first steps then carry into the
    images (about 1e-4 in a loss after 3 steps here)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("local") / "run"
        run_search(_cfg(), out, quiet=True, report=False)
    finally:
        torch.set_num_threads(threads)
    return out


@needs_ray
def test_a_ray_search_writes_the_candidates_a_local_one_writes(local_ray, local_run, tmp_path):
    out = tmp_path / "ray"
    res = run_search(_cfg(executor="ray", ray_actors=2), out, quiet=True, report=False)
    pd.testing.assert_frame_equal(_rows(out), _rows(local_run), check_exact=True)
    ex = res["executor"]
    assert ex["name"] == "ray" and ex["actors_wanted"] == 2 and len(ex["actors"]) == 2 and ex["events"] == []
    assert all(a["device"] == "cpu" and a["weights"] == "random" and a["candidates_per_s"] > 0 for a in ex["actors"])
    gens = pd.read_csv(out / "generations.csv")
    assert (gens.eval_seconds > 0).all()
    assert "dispatch" in res["seconds_by_phase"]  # what Ray adds per generation beyond the slowest actor


@needs_ray
@pytest.mark.parametrize("levels", [dict(steps=9, min_steps=1), dict(steps=6, size=32, scales=[24, 32])],
                         ids=["steps", "scales"])
def test_a_dehb_search_on_ray_continues_its_transfers_across_actors(local_ray, tmp_path, levels):
    """The promoted candidates' transfer states (over the steps, or a ladder's images between its scales)
    travel to whichever actor continues them; the rows are a local run's, bit for bit (fp64, one
    thread)."""
    import torch
    dehb = dict(optimizer="dehb", eta=3, search=["angles", "rotation_weight"], style=["sample:starry_night.jpg"],
                outputs=2, **levels)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_search(_cfg(**dehb), tmp_path / "local", quiet=True, report=False)
    finally:
        torch.set_num_threads(threads)
    run_search(_cfg(**dehb, executor="ray", ray_actors=2), tmp_path / "ray", quiet=True, report=False)
    rows = _rows(tmp_path / "ray")
    assert (rows.steps_run < rows.steps).any()  # some rows were continued, on actors
    pd.testing.assert_frame_equal(rows, _rows(tmp_path / "local"), check_exact=True)


@needs_ray
def test_an_actor_killed_mid_generation_is_replaced_and_nothing_is_lost(local_ray, local_run, tmp_path, monkeypatch):
    calls = []

    def kill_in_generation_1(handles):
        calls.append(len(handles))
        if len(calls) == 2:  # generation 1: both slices are sent; the first actor dies before answering
            ray.kill(handles[0], no_restart=True)
    real = RayExecutor.start

    def start(self):
        self.on_dispatch = kill_in_generation_1
        return real(self)
    monkeypatch.setattr(RayExecutor, "start", start)
    out = tmp_path / "ray"
    res = run_search(_cfg(executor="ray", ray_actors=2), out, quiet=True, report=False)
    pd.testing.assert_frame_equal(_rows(out), _rows(local_run), check_exact=True)
    events = json.loads((out / "state.json").read_text())["events"]
    assert [(e["generation"], e["event"], e["actor"]) for e in events] == [(1, "actor lost", 0)]
    assert events[0]["rerun_on"] == 1 and events[0]["candidates"][0] == 0
    assert calls == [2, 2, 2, 2]  # generation 2 and the baseline ran on a full pool: the lost actor was replaced
    assert sorted(a["id"] for a in res["executor"]["actors"]) == [1, 2]


@needs_ray
def test_with_no_actor_left_the_run_stops_as_interrupted_and_resumes(local_ray, local_run, tmp_path, monkeypatch):
    calls = []

    def kill_all_in_generation_1(handles):
        calls.append(1)
        if len(calls) == 2:
            for h in handles:
                ray.kill(h, no_restart=True)
    real_start, real_top_up = RayExecutor.start, RayExecutor._top_up

    def start(self):
        self.on_dispatch = kill_all_in_generation_1
        return real_start(self)
    monkeypatch.setattr(RayExecutor, "start", start)
    monkeypatch.setattr(RayExecutor, "_top_up", lambda self: None)  # a cluster with no room left
    out = tmp_path / "ray"
    with pytest.raises(Interrupted) as exc:
        run_search(_cfg(executor="ray", ray_actors=2), out, quiet=True, report=False)
    assert exc.value.exit_code == 75 and "none could be started" in exc.value.name
    state = json.loads((out / "state.json").read_text())
    assert state["status"] == "interrupted" and state["generations_done"] == 1
    monkeypatch.setattr(RayExecutor, "start", real_start)
    monkeypatch.setattr(RayExecutor, "_top_up", real_top_up)
    # workers are back: the same run resumes (the executor's settings may change on a resume)
    run_search(_cfg(executor="ray", ray_actors=1), out, resume=True, quiet=True, report=False)
    pd.testing.assert_frame_equal(_rows(out), _rows(local_run), check_exact=True)


@needs_ray
def test_more_actors_than_the_cluster_has_is_refused_before_anything_is_written(local_ray, tmp_path):
    with pytest.raises(EvostyleError, match="ray-actors 3 is more than the cluster has room for"):
        run_search(_cfg(executor="ray", ray_actors=3), tmp_path / "run", quiet=True, report=False)
    assert not (tmp_path / "run").exists()


def test_without_ray_the_flag_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(SystemExit) as exc:
        main(["--executor", "ray", "--weights", "random", "--out", str(tmp_path / "run")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'evostyle[ray]'" in err[0]
    assert not (tmp_path / "run").exists()


def test_ray_settings_need_the_ray_executor(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["--ray-actors", "2", "--weights", "random", "--out", str(tmp_path / "run")])
    assert exc.value.code == 2
    assert "go with --executor ray" in capsys.readouterr().err


@pytest.mark.parametrize("p,rates", [(10, [None, None]), (10, [1.0, 3.0]), (7, [2.0, None, 1.0]), (2, [1.0] * 3),
                                     (32, [5.0, 1.0, 1.0, 1.0])])
def testslice_population_are_contiguous_cover_the_population_and_follow_throughput(p, rates):
    s = slice_population(p, rates)
    assert s[0][0] == 0 and s[-1][1] == p and all(a[1] == b[0] for a, b in zip(s, s[1:]))
    sizes = [hi - lo for lo, hi in s]
    if p >= len(rates):
        assert min(sizes) >= 1
    known = [r for r in rates if r]
    w = [r or (sum(known) / len(known) if known else 1.0) for r in rates]
    for size, x in zip(sizes, w):  # within one candidate of the proportional share
        assert abs(size - p * x / sum(w)) <= 1


def test_an_executor_that_fails_to_start_is_closed_and_a_user_executor_can_be_registered(tmp_path):
    """An executor is a context manager that closes what a failed start began; executors are a registry users extend."""
    from evostyle.search.executors import EXECUTORS, Executor, LocalExecutor, make_executor
    closed = []

    class Broken(Executor):
        def start(self):
            raise EvostyleError("no cluster here")

        def close(self):
            closed.append(True)

    class Counting(LocalExecutor):
        calls = 0

        def evaluate(self, values, compile=None):
            Counting.calls += 1
            return super().evaluate(values, compile)
    EXECUTORS.register("broken-test", Broken)
    EXECUTORS.register("counting-test", Counting)
    try:
        with pytest.raises(EvostyleError, match="no cluster here"), make_executor(_cfg(executor="broken-test"), None):
            pass
        assert closed == [True]
        res = run_search(_cfg(executor="counting-test", maxiter=1), tmp_path / "run", quiet=True, report=False)
        assert Counting.calls == 3 and res["executor"] == {"name": "counting-test"}  # 2 generations + baseline
    finally:
        EXECUTORS.unregister("broken-test")
        EXECUTORS.unregister("counting-test")


@needs_ray
def test_sigterm_during_a_ray_generation_stops_as_interrupted_and_resumes(tmp_path):
    """A signal handler that raises while Ray waits must not turn into a failed run (Ray's compiled
    wait reports it as a SystemError): exit 143, interrupted, and the run resumes to the end."""
    import signal
    import subprocess
    import sys
    import time
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "evostyle.search", "--size", "32", "--steps", "20", "--popsize", "6", "--outputs",
           "2", "--maxiter", "4", "--weights", "random", "--device", "cpu", "--executor", "ray", "--ray-actors", "2",
           "--no-report", "--quiet"]
    p = subprocess.Popen([*cmd, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if json.loads((out / "state.json").read_text()).get("generations_done", 0) >= 1:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    state = json.loads((out / "state.json").read_text())
    assert p.returncode == 143 and state["status"] == "interrupted" and state["signal"] == "SIGTERM", err
    assert "Traceback" not in err and "--resume" in err
    done = subprocess.run([sys.executable, "-m", "evostyle.search", "--resume", str(out), "--quiet", "--no-report"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "state.json").read_text())["status"] == "finished"
    assert sorted(pd.read_csv(out / "candidates.csv").generation.unique()) == [0, 1, 2, 3, 4]
