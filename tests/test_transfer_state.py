"""Continuing a transfer (evostyle.transfer.state): a run stopped after some steps and continued from
its TransferState gives, in fp64, the images one uninterrupted run of the summed steps gives, row by
row, whatever rows are continued together; what a multi-fidelity search's promotions rest on."""

import pytest
import torch

from evostyle.style.targets import StyleTargets
from evostyle.transfer import TransferConfig, run_transfer


@pytest.fixture(scope="module")
def setting(model):
    g = torch.Generator().manual_seed(5)
    content, style = torch.rand(3, 16, 16, generator=g), torch.rand(3, 16, 16, generator=g)
    cfg = TransferConfig(steps=6, precision="fp64", style_layers=("relu1_1", "relu2_1"), content_layer="relu2_1")
    targets = StyleTargets(model, [style], cfg.style_layers, cfg.measure, "pixel").build(
        torch.ones(3, 1), torch.tensor([0.0, 90.0, 180.0]), torch.ones(3))
    return model, content, targets, cfg


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_a_continued_transfer_equals_an_uninterrupted_one(setting, optimizer):
    model, content, targets, cfg = setting
    cfg = TransferConfig(**{**cfg.__dict__, "optimizer": optimizer})
    whole = run_transfer(model, content, targets, cfg, keep_state=True)
    first = run_transfer(model, content, targets, TransferConfig(**{**cfg.__dict__, "steps": 2}), keep_state=True)
    assert first.state.steps.tolist() == [2, 2, 2] and first.state.images.dtype == torch.float64
    rest = run_transfer(model, content, targets, TransferConfig(**{**cfg.__dict__, "steps": 4}), start=first.state,
                        keep_state=True)
    assert rest.state.steps.tolist() == [6, 6, 6]
    assert torch.allclose(rest.state.images, whole.state.images, atol=1e-12, rtol=0)  # fp64, to rounding
    assert torch.equal(rest.images, whole.images) or torch.allclose(rest.images, whole.images, atol=1e-6, rtol=0)
    for term in ("total", "style", "content"):
        assert torch.allclose(rest.final[term], whole.final[term], rtol=1e-5), term
    assert not torch.allclose(first.images, whole.images, atol=1e-3)  # the two steps were not the six


def test_rows_continue_alone_in_any_order(setting):
    model, content, targets, cfg = setting
    whole = run_transfer(model, content, targets, cfg)
    first = run_transfer(model, content, targets, TransferConfig(**{**cfg.__dict__, "steps": 3}), keep_state=True)
    pick = [2, 0]  # the promoted rows, best first
    rest = run_transfer(model, content, {l: t[pick] for l, t in targets.items()},
                        TransferConfig(**{**cfg.__dict__, "steps": 3}), start=first.state.rows(pick))
    assert torch.allclose(rest.images, whole.images[pick], atol=1e-6, rtol=0)


def test_a_state_that_does_not_fit_is_refused(setting):
    model, content, targets, cfg = setting
    first = run_transfer(model, content, targets, TransferConfig(**{**cfg.__dict__, "steps": 1}), keep_state=True)
    with pytest.raises(ValueError, match="2 rows for 3 rows"):
        run_transfer(model, content, targets, cfg, start=first.state.rows([0, 1]))
    with pytest.raises(ValueError, match="adam transfer cannot continue with lbfgs"):
        run_transfer(model, content, targets, TransferConfig(**{**cfg.__dict__, "optimizer": "lbfgs"}),
                     start=first.state)
    mixed = type(first.state).cat([first.state.rows([0]), run_transfer(
        model, content, {l: t[:1] for l, t in targets.items()}, TransferConfig(**{**cfg.__dict__, "steps": 2}),
        keep_state=True).state])
    with pytest.raises(ValueError, match="different Adam steps"):
        run_transfer(model, content, {l: t[:2] for l, t in targets.items()}, cfg, start=mixed)
