"""docs/architecture.md's extension example is real: its one file registers a measure, a rotation
mode, a diversity metric, an objective, an executor and an optimiser, and a search runs with all six."""

import re
from pathlib import Path

import pandas as pd
import pytest

from evostyle.search import EXECUTORS, OPTIMIZERS, make_config, run_search
from evostyle.search.scoring import DIVERSITY_METRICS, OBJECTIVES
from evostyle.style.measures import MEASURES
from evostyle.style.rotations import ROTATION_MODES

DOC = Path(__file__).parent.parent / "docs" / "architecture.md"
ADDED = ((MEASURES, "diag"), (ROTATION_MODES, "brighten"), (DIVERSITY_METRICS, "colour"),
         (OBJECTIVES, "fidelity_only"), (EXECUTORS, "counting"), (OPTIMIZERS, "hill-climb"))


@pytest.fixture
def my_extensions():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    namespace = {"__name__": "my_extensions"}
    exec(compile(blocks[0], "my_extensions.py", "exec"), namespace)
    yield namespace, blocks[1]
    for registry, name in ADDED:
        registry.unregister(name)


def test_the_extension_example_runs_a_search_with_all_six(my_extensions, tmp_path):
    namespace, usage = my_extensions
    names = dict(re.findall(r'"(\w+)": "([\w-]+)"', usage))
    assert names == {"measure": "diag", "rotation_mode": "brighten", "diversity_metric": "colour",
                     "objective": "fidelity_only", "executor": "counting", "optimizer": "hill-climb"}
    cfg = make_config({**names, "size": 24, "steps": 2, "population": 5, "outputs": 2, "maxiter": 1,
                       "weights": "random", "device": "cpu"})
    res = run_search(cfg, tmp_path / "run", quiet=True, report=False)
    cands = pd.read_csv(tmp_path / "run" / "candidates.csv")
    assert len(cands) == 10 and cands.diversity_colour.notna().all()
    assert res.optimizer["name"] == "hill-climb" and res["executor"] == {"name": "counting"}
    assert namespace["Counting"].batches == 3  # two generations and the baseline
