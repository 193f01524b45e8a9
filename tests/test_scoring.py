"""Scores checked by hand: pixel and feature diversity, the base-weight loss and the fitness."""

import math

import pytest
import torch

from evostyle.errors import EvostyleError
from evostyle.scoring import (ScoreConfig, feature_diversity, fitness, pairwise_feature, pairwise_pixel,
                              score_loss)


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


def test_fitness_trades_loss_for_diversity_caps_and_fails():
    loss = torch.tensor([1.0, 2.0, 3.0, float("nan")], dtype=torch.float64)
    div = {"diversity_pixel": torch.tensor([0.5, 0.1, 0.0, 0.0], dtype=torch.float64),
           "diversity_feature": torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)}
    failed = torch.tensor([False, False, True, False])
    f = fitness(loss, div, failed, ScoreConfig(diversity_weight=2.0))
    assert f.tolist() == [0.0, 1.8, math.inf, math.inf]  # failed and NaN rows are +inf
    g = fitness(loss, div, failed, ScoreConfig(diversity_metric="feature", loss_cap=1.5, cap_penalty=10.0))
    assert g[:2].tolist() == [1.0, 2.0 - 1.0 + 10.0 * 0.5]


@pytest.mark.parametrize("kw,msg", [({"diversity_metric": "lpips"}, "unknown diversity metric"),
                                    ({"diversity_weight": -1.0}, "diversity weight must be finite"),
                                    ({"diversity_weight": float("nan")}, "diversity weight must be finite"),
                                    ({"loss_cap": 0.0}, "loss cap must be a positive number")])
def test_bad_score_settings_are_refused(kw, msg):
    with pytest.raises(EvostyleError, match=msg):
        ScoreConfig(**kw).validate()
