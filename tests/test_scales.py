"""Coarse-to-fine transfers (``scales``): one scale is today's transfer; a ladder is each scale's
transfer started from the coarser result, upsampled; the steps are shared out; bad ladders are refused
in one line before anything is written."""

import pytest
import torch
import torch.nn.functional as F

from evostyle.errors import EvostyleError
from evostyle.search.config import make_config
from evostyle.transfer.config import TransferConfig
from evostyle.transfer.engine import StyleEngine, coarse_scales, ladder_ends, share_steps
from evostyle.transfer.run import run_transfer


def _engine(images, steps=5, size=64, scales=(), **kw):
    content, style = images
    cfg = TransferConfig(steps=steps, precision="fp64", **kw)
    return StyleEngine(content, [style], cfg, size=size, weights="random", seed=0, device="cpu",
                       rotation_mode="pixel", scales=scales)


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 48, 64, generator=g), torch.rand(3, 48, 64, generator=g)


def _run(eng, angles=(0.0, 90.0), **kw):
    n = len(angles)
    return eng.run(torch.ones(n, 1), torch.tensor(angles, dtype=torch.float64), torch.ones(n), **kw)


def test_one_scale_is_todays_transfer(images):
    plain = _run(_engine(images))
    for scales in ((), (64,)):
        eng = _engine(images, scales=scales)
        assert eng.levels == [] and eng.build_coarse_targets(torch.ones(1, 1), torch.zeros(1), torch.ones(1)) == []
        same = _run(eng)
        assert torch.equal(same.images, plain.images) and same.history_steps == plain.history_steps
        assert all(torch.equal(same.final[t], plain.final[t]) for t in plain.final)


def test_a_ladder_is_each_scale_started_from_the_coarser_result_upsampled(images):
    eng = _engine(images, steps=5, scales=(32, 64))
    res = _run(eng)
    assert res.images.shape == (2, 3, 48, 64) and res.history_steps[-1] == 5
    assert res.history_steps == sorted(res.history_steps)  # counted across the scales
    # by hand: 2 steps at 32 px, the result upsampled, 3 steps at 64 px from it
    mix, angles, rw = torch.ones(2, 1), torch.tensor([0.0, 90.0], dtype=torch.float64), torch.ones(2)
    coarse = eng.levels[0]
    assert coarse.content.shape[-2:] == (24, 32)
    cfg = eng.cfg
    low = run_transfer(eng.model, coarse.content, coarse.targets.build(mix, angles, rw),
                       TransferConfig(**{**cfg.__dict__, "steps": 2}), device=eng.device)
    start = F.interpolate(low.images, size=(48, 64), mode="bilinear", align_corners=False).clamp(0, 1)
    high = run_transfer(eng.model, eng.content, eng.build_targets(mix, angles, rw),
                        TransferConfig(**{**cfg.__dict__, "steps": 3}), device=eng.device, init_images=start)
    assert torch.equal(res.images, high.images)
    assert all(torch.equal(res.initial[t], low.initial[t]) for t in low.initial)  # from the coarsest start
    assert not torch.equal(res.images, _run(_engine(images, steps=5)).images)     # and not one scale's


def test_a_ladder_stopped_where_a_scale_ends_and_continued_is_the_uninterrupted_ladder(images):
    """The budget levels of a multi-fidelity search over scales: stopping after each scale (keeping the
    images) and going on from there gives, bit for bit, the images of one uninterrupted ladder."""
    eng = _engine(images, steps=7, size=64, scales=(24, 48))
    assert ladder_ends(7, 3) == [2, 4, 7] and eng.ladder == [24, 48, 64]
    assert [eng.scale_after(n) for n in (2, 4, 7)] == [24, 48, 64]
    mix, angles, rw = torch.ones(3, 1), torch.tensor([0.0, 45.0, 90.0], dtype=torch.float64), torch.ones(3)

    def go(order=(0, 1, 2), **kw):  # rows continued in another order bring their own targets
        a = angles[list(order)]
        return eng.optimise(eng.build_targets(mix, a, rw), coarse_targets=eng.build_coarse_targets(mix, a, rw), **kw)

    whole = go()
    first = go(steps=2, keep_state=True)
    assert first.images.shape[-2:] == (18, 24) and first.state.steps.tolist() == [2, 2, 2]
    assert first.state.buffers == {}  # the next scale starts a fresh optimiser: only the images matter
    second = go(start=first.state, steps=2, keep_state=True)
    assert second.images.shape[-2:] == (36, 48)
    last = go((2, 0, 1), start=second.state.rows([2, 0, 1]), steps=3)  # rows continue in any order
    assert torch.equal(last.images, whole.images[[2, 0, 1]])
    assert torch.equal(go(start=first.state, steps=5).images, whole.images)  # two scales in one go
    assert torch.equal(go(steps=4, keep_state=True).images, second.images)  # a prefix from scratch
    with pytest.raises(ValueError, match="steps=4 stops the ladder early"):  # not taken for a 4-step ladder
        go(steps=4)
    for bad in (dict(steps=3, keep_state=True), dict(start=first.state, steps=1), dict(start=second.state, steps=4)):
        with pytest.raises(ValueError, match=r"only where a scale ends \(after \[2, 4, 7\] steps\)"):
            go(**bad)


def test_outputs_of_a_coarser_scale_are_scored_against_that_scale(images):
    from evostyle.search.evaluator import Evaluator
    from evostyle.search.space import style_space
    eng = _engine(images, steps=4, size=64, scales=(32,))
    ev = Evaluator(eng, style_space(2, 1, eng.cfg.style_layers, ["angles"], "pixel"), outputs=2)
    feats, targets = eng.references((24, 32))
    assert targets is eng.levels[0].targets and feats.shape[-2:] == (3, 4)  # relu4_2 of 24x32 px
    assert eng.references((48, 64))[0] is eng.content_features
    content = eng.levels[0].content[None, None].expand(1, 2, -1, -1, -1)
    scored = ev.score_images(content, torch.ones(2, 1))
    assert float(scored["fidelity_content"]) == pytest.approx(0.0, abs=1e-9)  # the scale's own photo
    with pytest.raises(ValueError, match="no scale of this engine is 20x10 px"):
        eng.references((10, 20))


def test_steps_are_shared_with_the_remainder_at_the_finest_scale():
    assert share_steps(10, 3) == [3, 3, 4] and share_steps(3, 3) == [1, 1, 1] and share_steps(7, 1) == [7]
    with pytest.raises(EvostyleError, match="2 steps cannot be shared among 3 scales"):
        share_steps(2, 3)
    assert coarse_scales([64, 128, 256], 256) == (64, 128) and coarse_scales([], 256) == ()


@pytest.mark.parametrize("scales", [[128, 64, 256], [64, 512], [64, 64], [300]])
def test_a_ladder_that_does_not_rise_to_the_size_is_refused_before_anything_runs(scales):
    with pytest.raises(EvostyleError, match="must rise strictly to the output size 256 px"):
        make_config({"size": 256, "scales": scales})


def test_ladders_are_refused_in_one_line_where_they_cannot_run(tmp_path, capsys):
    from evostyle.cli.transfer import main as transfer
    with pytest.raises(EvostyleError, match="dehb's budget levels are the scales: drop min_steps"):
        make_config({"optimizer": "dehb", "scales": [32, 64], "size": 64, "min_steps": 2})
    from evostyle.search.optimizers import DEHBOptimizer  # --scales naming only --size is one scale
    one = make_config({"optimizer": "dehb", "scales": [64], "size": 64, "steps": 27, "min_steps": 9})
    assert DEHBOptimizer(one).schedule().budgets == [9, 27]
    with pytest.raises(EvostyleError, match="4 steps cannot be shared among 5 scales"):
        make_config({"steps": 4, "scales": [8, 16, 32, 64], "size": 128})
    with pytest.raises(EvostyleError, match="list of integers"):
        make_config({"scales": [32.5]})
    out = tmp_path / "t"
    for scales, says in ((["64"], "must rise strictly to the output size 32 px"),
                         (["8", "32"], "scale 8 px: 8x8 px is too small for layer relu5_1")):
        with pytest.raises(SystemExit) as exc:
            transfer(["--content", "sample:cat.jpg", "--style", "sample:starry_night.jpg", "--size", "32",
                      "--scales", *scales, "--weights", "random", "--out", str(out), "-q"])
        assert exc.value.code == 2 and not out.exists()
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0] and "raise" in err[0]


def test_a_search_with_a_ladder_runs_and_records_it(tmp_path):
    import json

    from evostyle.search import run_search
    cfg = make_config({"size": 32, "steps": 4, "scales": [24, 32], "popsize": 5, "outputs": 2, "maxiter": 0,
                       "weights": "random", "device": "cpu", "seed": 0})
    res = run_search(cfg, tmp_path / "run", quiet=True, report=False)
    assert res.candidates().fitness.notna().all()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["transfer"]["scales"] == [24, 32]
