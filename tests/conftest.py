"""Shared fixtures: tiny images, a seeded random-init VGG19 (no network, no ImageNet weights)."""

from __future__ import annotations

import pytest
import torch

from evostyle import sample_image
from evostyle.features import VGGFeatures
from evostyle.images import load_image

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def model():
    return VGGFeatures(("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"),
                       weights="random", seed=0)


@pytest.fixture(scope="session")
def content64():
    return load_image(sample_image("cat.jpg"), 64)


@pytest.fixture(scope="session")
def style64(content64):
    return load_image(sample_image("starry_night.jpg"), tuple(content64.shape[-2:]))


@pytest.fixture(scope="session")
def wave64(content64):
    return load_image(sample_image("great_wave.jpg"), tuple(content64.shape[-2:]))
