"""Kill a search with SIGKILL at random moments, resume it, and check nothing is lost or duplicated.

    python experiments/kill_resume.py [--trials 10] [--seed 0]

Runs one uninterrupted reference search, then for each trial starts the same search in a subprocess,
kills it after a random delay, resumes it with ``--resume`` (killing again at random until it
finishes), and compares candidates.csv (without the timing column) with the reference. Exits 1 on
any difference. The search is tiny (32 px, 3 steps) so a trial takes seconds on a CPU.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evostyle.rundir import files

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--size", "32", "--steps", "3", "--popsize", "5", "--outputs", "2", "--maxiter", "4", "--weights",
        "random", "--device", "cpu", "--quiet", "--no-report", "--seed", "3"]


def _cmd(*extra):
    return [sys.executable, "-m", "evostyle.search", *extra]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _rows(run: Path) -> list[str]:
    lines = (run / files.CANDIDATES).read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, h in enumerate(header) if h not in ("seconds", "gen_seconds_per_candidate")]  # timing differs
    return [",".join(line.split(",")[i] for i in keep) for line in lines]


def trial(ref: Path, work: Path, rng: random.Random, max_delay: float) -> tuple[bool, int]:
    """One kill-and-resume trial; returns (rows equal to the reference, number of kills)."""
    run = work / "run"
    kills, first = 0, True
    while True:
        cmd = _cmd(*ARGS, "--out", str(run)) if first else _cmd("--resume", str(run), "--quiet", "--no-report")
        proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=rng.uniform(0.5, max(0.6, max_delay)))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            if (run / files.STATE).exists():
                first = False
            continue
        err = proc.stderr.read().decode()
        if proc.returncode != 0:
            raise RuntimeError(f"search exited {proc.returncode}: {err.strip()}")
        break
    return _rows(run) == _rows(ref), kills


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python experiments/kill_resume.py", description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10, help="kill-and-resume trials (default: 10)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the kill times (default: 0)")
    ap.add_argument("--max-delay", type=float, default=None,
                    help="latest kill, seconds after a (re)start (default: 0.9 x the reference run's time)")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        ref = Path(tmp) / "ref"
        t0 = time.perf_counter()
        subprocess.run(_cmd(*ARGS, "--out", str(ref)), env=_env(), check=True, stdout=subprocess.DEVNULL)
        ref_s = time.perf_counter() - t0
        max_delay = args.max_delay or 0.9 * ref_s
        print(f"reference run: {ref_s:.1f} s, {len(_rows(ref)) - 1} rows; kills within 0.5-{max_delay:.1f} s")
        ok_all = True
        for t in range(args.trials):
            work = Path(tmp) / f"t{t}"
            work.mkdir()
            ok, kills = trial(ref, work, rng, max_delay)
            ok_all &= ok
            print(f"trial {t}: {kills} kill(s), rows {'identical' if ok else 'DIFFERENT'}")
    print("all trials identical" if ok_all else "MISMATCH")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
