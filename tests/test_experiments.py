"""An experiment's --quick mode, end to end, as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def test_two_styles_quick(tmp_path):
    out = tmp_path / "two_styles"
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "two_styles.py"), "--quick", "--weights",
                           "random", "--device", "cpu", "--out", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
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
