"""Scores checked by hand: pixel and feature diversity, the base-weight loss and the fitness."""

import math

import pytest
import torch

from evostyle.errors import EvostyleError
from evostyle.search.scoring import (
    ScoreConfig,
    feature_diversity,
    fidelity_terms,
    fitness,
    objectives,
    output_terms,
    pairwise_feature,
    pairwise_pixel,
    score_loss,
)


def _flat(values, size=4):
    """(P, K) grey levels -> (P, K, 3, size, size) constant images."""
    v = torch.as_tensor(values, dtype=torch.float32)
    return v[:, :, None, None, None].expand(*v.shape, 3, size, size).clone()


def test_pixel_diversity_is_the_mean_over_pairs_of_mean_abs_difference():
    imgs = _flat([[0.0, 0.5, 1.0], [0.2, 0.2, 0.2]])
    d = pairwise_pixel(imgs)
    # pairs (0, 0.5), (0, 1), (0.5, 1): 0.5, 1, 0.5 -> 2/3; identical outputs -> 0
    assert d.dtype == torch.float64 and torch.allclose(d, torch.tensor([2 / 3, 0.0], dtype=torch.float64))
    assert pairwise_pixel(imgs[:, :1]).tolist() == [0.0, 0.0]  # K = 1: no pairs


def test_feature_diversity_relative_distance_by_hand():
    e1, e2 = torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)
    e1[0, 0, 0], e2[0, 1, 1] = 1.0, 1.0
    orth = torch.stack([e1, e2])[None]  # (P=1, K=2, C=1, 2, 2), orthogonal features
    assert math.isclose(float(pairwise_feature(orth)), math.sqrt(2), rel_tol=1e-12)
    same = torch.stack([e1, e1])[None]
    assert float(pairwise_feature(same)) == 0.0
    double = torch.stack([e1, 2 * e1])[None]  # ||f|| / sqrt((1 + 4) / 2)
    assert math.isclose(float(pairwise_feature(double)), 1 / math.sqrt(2.5), rel_tol=1e-12)


def test_feature_diversity_through_a_network_ignores_the_chunking(model):
    gen = torch.Generator().manual_seed(0)
    imgs = torch.rand(3, 2, 3, 32, 32, generator=gen)
    imgs[1, 1] = imgs[1, 0]  # candidate 1: two identical outputs
    a = feature_diversity(model, imgs, "relu3_1", batch=1)
    b = feature_diversity(model, imgs, "relu3_1", batch=16)
    assert a.shape == (3,) and a.device.type == "cpu" and a.dtype == torch.float64
    assert torch.allclose(a, b, rtol=1e-5) and float(a[1]) == 0.0 and float(a[0]) > 0


def test_loss_uses_the_base_weights_and_averages_outputs():
    final = {"content": torch.tensor([1.0, 2.0, 3.0, 4.0]),
             "style_a": torch.tensor([0.0, 2.0, 4.0, 6.0]), "style_b": torch.tensor([2.0, 2.0, 2.0, 2.0])}
    loss = score_loss(final, ["a", "b"], content_weight=1.0, style_weight=10.0, p=2, k=2)
    # per output: content + 10 * mean(style_a, style_b) = 11, 22, 33, 44 -> candidates 16.5, 38.5
    assert loss.tolist() == [16.5, 38.5]


def test_fidelity_is_the_weighted_mean_over_outputs_and_layers():
    per_output = {"content": torch.tensor([1.0, 3.0, 0.0, 0.0]),
                  "style_a": torch.tensor([0.0, 2.0, 4.0, 6.0]), "style_b": torch.tensor([2.0, 2.0, 2.0, 2.0])}
    f = fidelity_terms(per_output, ["a", "b"], content_weight=1.0, style_weight=10.0, p=2, k=2)
    # style per output: 1, 2, 3, 4 -> candidates 1.5, 3.5; content 2, 0
    assert f["fidelity_style"].tolist() == [1.5, 3.5] and f["fidelity_content"].tolist() == [2.0, 0.0]
    assert f["fidelity"].tolist() == [17.0, 35.0]


def score_terms(quality, loss_score, pixel, feature):
    d = torch.float64
    return {"fidelity": torch.tensor(quality, dtype=d), "loss_score": torch.tensor(loss_score, dtype=d),
            "diversity_pixel": torch.tensor(pixel, dtype=d), "diversity_feature": torch.tensor(feature, dtype=d)}


def test_fitness_trades_quality_for_diversity_caps_and_fails():
    terms = score_terms([1.0, 2.0, 3.0, float("nan")], [9.0, 9.0, 9.0, 9.0], [0.5, 0.1, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0])
    failed = torch.tensor([False, False, True, False])
    f = fitness(terms, failed, ScoreConfig(diversity_metric="pixel", diversity_weight=2.0))
    assert f.tolist() == [0.0, 1.8, math.inf, math.inf]  # failed and NaN rows are +inf
    g = fitness(terms, failed, ScoreConfig(diversity_metric="feature", loss_cap=1.5, cap_penalty=10.0))
    assert g[:2].tolist() == [1.0, 2.0 - 1.0 + 10.0 * 0.5]
    old = fitness(terms, failed, ScoreConfig("pixel", fitness_loss="own_target"))  # the rule before fidelity
    assert old[:2].tolist() == [9.0 - 0.5, 9.0 - 0.1]


def test_pareto_objectives_are_quality_and_negated_diversity():
    terms = score_terms([1.0, 2.0, 3.0], [5.0, 5.0, 5.0], [0.5, 0.1, 0.2], [0.0, 1.0, 0.3])
    obj = objectives(terms, torch.tensor([False, False, True]), ScoreConfig(diversity_metric="feature"))
    assert obj.shape == (3, 2) and obj[:2].tolist() == [[1.0, -0.0], [2.0, -1.0]]
    assert obj[2].tolist() == [math.inf, math.inf]


def test_output_terms_do_not_depend_on_the_chunking_and_score_the_reference(model, content64, style64):
    from evostyle.style.measures import content_term, style_statistic, style_term
    imgs = torch.stack([content64, style64, 0.5 * (content64 + style64)])
    layers = ("relu1_1", "relu3_1")
    with torch.no_grad():
        cf = model(content64[None], ("relu4_2",))["relu4_2"]
        ref = {l: style_statistic(model(style64[None], (l,))[l], "gram").expand(3, -1, -1) for l in layers}
    a, kept = output_terms(model, imgs, cf, ref, layers, "relu4_2", "gram", keep=("relu3_1",), batch=1)
    b, _ = output_terms(model, imgs, cf, ref, layers, "relu4_2", "gram", batch=16)
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-5)
    assert float(a["content"][0]) < 1e-10 and float(a["style_relu1_1"][1]) < 1e-10  # the content / the style
    with torch.no_grad():
        f = model(imgs[2:3])
    assert torch.allclose(a["style_relu3_1"][2], style_term(f["relu3_1"], ref["relu3_1"][:1], "gram"), rtol=1e-5)
    assert torch.allclose(a["content"][2], content_term(f["relu4_2"], cf), rtol=1e-5)
    assert kept["relu3_1"].shape[0] == 3


@pytest.mark.parametrize("kw,msg", [({"diversity_metric": "lpips"}, "unknown diversity metric"),
                                    ({"diversity_weight": -1.0}, "diversity weight must be finite"),
                                    ({"diversity_weight": float("nan")}, "diversity weight must be finite"),
                                    ({"loss_cap": 0.0}, "loss cap must be a positive number"),
                                    ({"fitness_loss": "vibes"}, "unknown fitness loss 'vibes'; valid: fidelity")])
def test_bad_score_settings_are_refused(kw, msg):
    with pytest.raises(EvostyleError, match=msg):
        ScoreConfig(**kw).validate()
