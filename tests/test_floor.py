"""The noise floor beside every diversity figure (evostyle.search.floor): what a candidate's outputs
give when only its seed changes, measured the way its diversity is, and recorded by every search."""

import json

import pytest
import torch

from evostyle.rundir import SearchResult, files
from evostyle.search.config import make_config
from evostyle.search.floor import noise_floor
from evostyle.search.run import build, run_search
from evostyle.search.scoring import DIVERSITY_METRICS

BASE = dict(size=32, steps=5, popsize=5, outputs=2, maxiter=0, weights="random", device="cpu", seed=3,
            search=["mix"], fixed={"angle_0": 0.0, "angle_1": 90.0})


def _defaults(ev) -> dict[str, float]:
    return {n: float(0.5 if p.value is None else p.value) for n, p in ev.space.by_name.items()}


def test_a_candidate_nothing_seeds_has_a_floor_of_zero_whatever_its_diversity():
    ev = build(make_config(BASE)).evaluator
    nf = noise_floor(ev, _defaults(ev), [7, 8, 9])
    assert nf.seeds == (7, 8, 9) and set(nf.floor) == set(DIVERSITY_METRICS)
    assert all(v == 0.0 for v in nf.floor.values())  # rotation and mixing do not depend on the seed
    assert all(len(d) == 3 and min(d) > 0 for d in nf.diversity.values())  # yet its outputs differ
    assert nf.diversity["pixel"][0] == nf.diversity["pixel"][2]


def test_the_floor_is_the_metrics_distance_between_the_same_output_under_two_seeds():
    ev = build(make_config({**BASE, "search": ["mix", "noise"]})).evaluator
    values = {**_defaults(ev), "noise_sigma": 0.3}
    nf = noise_floor(ev, values, [1, 2])
    one = {n: torch.tensor([v], dtype=torch.float64) for n, v in values.items()}
    a, b = (ev.evaluate_here(one, compile=False, noise_seeds=[s]).images[0] for s in (1, 2))  # (K, 3, H, W)
    by_hand = sum(float((a[k] - b[k]).abs().mean()) for k in range(2)) / 2
    assert nf.floor["pixel"] == pytest.approx(by_hand, rel=1e-6) and by_hand > 0.01
    assert nf.floor["feature"] > 0
    weaker = noise_floor(ev, {**values, "noise_sigma": 0.05}, [1, 2]).floor["pixel"]
    none = noise_floor(ev, {**values, "noise_sigma": 0.0}, [1, 2]).floor["pixel"]
    assert none == 0.0 < weaker < nf.floor["pixel"]  # the floor follows the noise it measures
    with pytest.raises(ValueError, match="at least two different seeds"):
        noise_floor(ev, values, [4, 4])


def test_every_search_records_its_best_candidates_floor_and_the_report_shows_it(tmp_path):
    res = run_search(make_config({**BASE, "search": ["mix", "noise"]}), tmp_path / "run", quiet=True)
    floor = res.noise_floor
    assert floor["seeds"] == [4, 5]  # other than the run's own seed, 3
    assert set(floor["floor"]) == set(DIVERSITY_METRICS) and floor["floor"]["pixel"] >= 0
    assert json.loads((tmp_path / "run" / files.SUMMARY).read_text())["noise_floor"] == floor
    # the figures named are the run's own diversity (feature, the default), the one its fitness uses
    best, metric = res.best, res.diversity_column
    assert metric == "diversity_feature"
    assert (f"feature diversity {best[metric]:.4f}), noise floor {floor['floor']['feature']:.4f}"
            in res.headline()) and "pixel diversity" not in res.headline()
    page = (tmp_path / "run" / files.REPORT).read_text()
    said = f"feature diversity {best[metric]:.4f} vs {res.baseline[metric]:.4f}"
    assert said in page and f"the noise floor {floor['floor']['feature']:.4f}" in page
    pixel = SearchResult.from_dir(run_search(make_config({**BASE, "search": ["mix", "noise"], "maxiter": 0,
                                                          "diversity_metric": "pixel"}), tmp_path / "p",
                                             quiet=True, report=False).path)
    assert f"pixel diversity {pixel.best['diversity_pixel']:.4f}" in pixel.headline()
    summary_md = (tmp_path / "run" / files.SUMMARY_MD).read_text()
    assert said in summary_md and "pixel diversity" not in summary_md


def test_a_run_from_before_the_floor_reads_as_having_none(tmp_path):
    old = SearchResult(tmp_path, {"best": {"fitness": 1.0}, "baseline_same_target": {"fitness": 1.0}})
    assert old.noise_floor == {} and "noise floor" not in old.headline()
