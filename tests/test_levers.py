"""The levers that make a candidate's outputs differ without touching the painting's targets (search
groups noise, perturb, diversity_loss): each is the identity at 0 and changes only its own
candidate's rows; the perturbation keeps its features' statistics; each makes the outputs differ."""

import pytest
import torch

from evostyle.errors import EvostyleError
from evostyle.search.config import make_config
from evostyle.search.run import build
from evostyle.style.perturb import perturb_features, random_orthogonal


def test_a_full_perturbation_keeps_the_features_statistics_and_moves_them():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(1, 8, 6, 5, generator=g, dtype=torch.float64) @ torch.eye(5, dtype=torch.float64)
    f = f + torch.linspace(0, 2, 8, dtype=torch.float64).view(1, 8, 1, 1)  # channels with other means
    out = perturb_features(f, torch.tensor([0.0, 1.0, 1.0, 0.5]), [1, 2, 3, 2])
    assert out.shape == (4, 8, 6, 5) and torch.equal(out[0], f[0])  # strength 0: the features themselves
    x = f[0].reshape(8, -1)
    for row in out[1:3]:
        y = row.reshape(8, -1)
        assert torch.allclose(y.mean(1), x.mean(1), atol=1e-9)
        assert torch.allclose(torch.cov(y), torch.cov(x), rtol=1e-3, atol=1e-3)  # up to the regularisation
        assert torch.allclose(y @ y.T, x @ x.T, rtol=1e-3, atol=1e-2)            # so the Gram matrix too
        assert (y - x).abs().mean() > 0.3 * x.std()                               # yet other features
    assert not torch.allclose(out[1], out[2])  # each seed its own rotation
    assert torch.allclose(out[3], 0.5 * f[0] + 0.5 * out[1])  # strength s: the way from f to its rotation
    q = random_orthogonal(8, 5)
    assert torch.allclose(q @ q.T, torch.eye(8, dtype=torch.float64), atol=1e-12)


BASE = dict(size=32, steps=6, popsize=5, outputs=2, maxiter=0, weights="random", device="cpu", seed=1,
            search=["mix"], fixed={"angle_0": 0.0, "angle_1": 0.0})  # both outputs with one target


@pytest.mark.parametrize(("group", "param", "strength", "gain", "start"), [
    ("noise", "noise_sigma", 0.3, 10.0, {}),
    ("perturb", "perturb_strength", 1.0, 2.0, {}),
    # the reward needs outputs that start apart: from one start and one target it has nothing to push
    ("diversity_loss", "diversity_loss_weight", 1.0, 1.0, {"image_init": "content+noise", "init_noise": 0.05}),
])
def test_a_lever_is_the_identity_at_zero_and_changes_only_its_own_rows(group, param, strength, gain, start):
    plain = build(make_config({**BASE, **start})).evaluator
    lever = build(make_config({**BASE, **start, "search": ["mix", group]})).evaluator
    assert param not in plain.space.names and lever.space.get(param).searched  # others keep their columns
    values = {n: torch.full((3,), float(0.5 if p.value is None else p.value), dtype=torch.float64)
              for n, p in plain.space.by_name.items()}
    a = plain.evaluate_values(values)
    b = lever.evaluate_values({**values, param: torch.tensor([0.0, strength, 0.0], dtype=torch.float64)})
    assert torch.equal(a.images[0], b.images[0]) and torch.equal(a.images[2], b.images[2])  # 0: identity
    assert not torch.equal(a.images[1], b.images[1])                                         # only its rows
    more = "diversity_feature" if group == "diversity_loss" else "diversity_pixel"
    assert b.terms[more][1] > gain * a.terms[more][1]


def test_the_inner_reward_is_logged_where_it_is_used_and_noise_needs_a_content_start():
    lever = build(make_config({**BASE, "search": ["mix", "diversity_loss"]})).evaluator
    assert "loss_diversity" in lever.columns
    assert "loss_diversity" not in build(make_config(BASE)).evaluator.columns
    with pytest.raises(EvostyleError, match="search group noise varies the noise added to a content start"):
        make_config({**BASE, "search": ["noise"], "image_init": "noise"})


def test_with_every_lever_on_a_candidates_rows_do_not_depend_on_the_candidates_beside_it():
    """What lets a Ray actor or a smaller chunk score a slice of the population: the inner reward's scale
    once came from the whole batch's perturbed content features, so a candidate's losses moved with its
    neighbours' perturbations (in the 7th digit, fp64). One thread: more split reductions differently."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ev = build(make_config({**BASE, "steps": 3, "precision": "fp64", "fixed": {},
                                "search": ["angles", "mix", "noise", "perturb", "diversity_loss"]})).evaluator
        unit = torch.rand(4, ev.space.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        values = ev.space.to_values(unit)
        whole = ev.evaluate_here(values)
        parts = [ev.evaluate_here({n: t[i:i + 1] for n, t in values.items()}) for i in (2, 0)]
    finally:
        torch.set_num_threads(threads)
    assert whole.terms["loss_diversity"].abs().min() > 0  # the reward is on, and the targets differ
    for i, part in zip((2, 0), parts):
        assert torch.equal(part.terms["loss_content"][0], whole.terms["loss_content"][i])
        assert torch.equal(part.images[0], whole.images[i])
