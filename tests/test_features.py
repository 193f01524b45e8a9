import logging
import warnings

import pytest
import torch
from torchvision.models import vgg19

from evostyle.errors import EvostyleError
from evostyle.network.features import LAYER_INDEX, LAYER_NAMES, VGGFeatures


def test_layer_indices_match_torchvision():
    assert [LAYER_INDEX[n] for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")] == \
        [1, 6, 11, 20, 22, 29]
    tv = vgg19(weights=None).features
    assert len(LAYER_NAMES) == len(tv)
    for name, mod in zip(LAYER_NAMES, tv):
        assert type(mod).__name__.lower().startswith(name[:4].replace("relu", "relu").replace("pool", "maxp")
                                                     .replace("conv", "conv"))


def test_truncated_to_deepest_layer_and_frozen():
    m = VGGFeatures(("relu2_1",), weights="random")
    assert len(m.body) == LAYER_INDEX["relu2_1"] + 1
    assert not any(p.requires_grad for p in m.parameters())
    m.train()
    assert not m.training
    out = m(torch.rand(2, 3, 32, 32))
    assert set(out) == {"relu2_1"} and out["relu2_1"].shape == (2, 128, 16, 16)


def test_forward_can_stop_at_a_shallower_tap(monkeypatch):
    """``layers`` picks taps and runs no module past the deepest of them (scoring needs relu3_1 only)."""
    import pytest

    from evostyle.errors import EvostyleError
    m = VGGFeatures(("relu1_1", "relu3_1", "relu5_1"), weights="random")
    x = torch.rand(2, 3, 32, 32)
    full = m(x)
    ran = []
    for i, mod in enumerate(m.body):
        mod.register_forward_hook(lambda mod, inp, out, i=i: ran.append(i))
    part = m(x, ("relu3_1",))
    assert set(part) == {"relu3_1"} and torch.equal(part["relu3_1"], full["relu3_1"])
    assert max(ran) == LAYER_INDEX["relu3_1"]
    between = m(x, ("conv2_1", "relu2_1"))  # any layer the trunk reaches, not only the taps
    assert torch.equal(between["relu2_1"], torch.relu(between["conv2_1"]))
    assert (between["conv2_1"] < 0).any()  # before the ReLU
    with pytest.raises(EvostyleError, match="unknown layer this extractor reaches 'relu5_2'"):
        m(x, ("relu5_2",))


def test_matches_torchvision_with_same_weights(tmp_path):
    tv = vgg19(weights=None)
    path = tmp_path / "vgg.pt"
    torch.save(tv.state_dict(), path)
    m = VGGFeatures(("conv3_1", "relu5_1"), weights=str(path))
    assert m.weights_info["used"] == "file" and len(m.weights_info["sha256"]) == 64
    x = torch.rand(1, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    ref = tv.features[:30]((x - mean) / std)
    assert torch.allclose(m(x)["relu5_1"], ref, atol=1e-5)
    assert torch.allclose(m(x)["conv3_1"], tv.features[:11]((x - mean) / std), atol=1e-5)


def test_random_weights_are_seeded():
    x = torch.rand(1, 3, 16, 16)
    a = VGGFeatures(("relu2_1",), weights="random", seed=3)(x)["relu2_1"]
    b = VGGFeatures(("relu2_1",), weights="random", seed=3)(x)["relu2_1"]
    c = VGGFeatures(("relu2_1",), weights="random", seed=4)(x)["relu2_1"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_unknown_layer_lists_valid_names():
    with pytest.raises(EvostyleError, match="unknown vgg19 layer 'relu9_9'; valid: conv1_1, relu1_1"):
        VGGFeatures(("relu9_9",), weights="random")


def test_weights_file_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"0.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(EvostyleError, match="is not a VGG19 or VGG16 convolutional base"):
        VGGFeatures(("relu1_1",), weights=str(bad))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a pickle at all")
    with pytest.raises(EvostyleError, match="weights_only=True"):
        VGGFeatures(("relu1_1",), weights=str(junk))
    with pytest.raises(EvostyleError, match=r"is neither a name \(imagenet, offline, random, auto\) nor an existing"):
        VGGFeatures(("relu1_1",), weights=str(tmp_path / "missing.pt"))


def test_pickled_object_is_refused(tmp_path):
    import argparse
    p = tmp_path / "evil.pt"
    torch.save({"model": argparse.Namespace(x=1)}, p)  # arbitrary objects need full unpickling
    with pytest.raises(EvostyleError, match="weights_only=True"):
        VGGFeatures(("relu1_1",), weights=str(p))


def test_auto_falls_back_to_random_with_a_logged_warning(monkeypatch, caplog):
    """Offline is an expected situation: one logged warning (no Python warning with file and line)."""
    import evostyle.network.weights as weights

    def fail(*args):
        raise EvostyleError("could not load ImageNet VGG19 weights (test: offline)")
    monkeypatch.setattr(weights, "_imagenet", fail)
    monkeypatch.setattr(weights, "_offline", fail)
    caplog.set_level("WARNING", logger="evostyle")
    monkeypatch.setattr(logging.getLogger("evostyle"), "propagate", True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Python warning is raised
        m = VGGFeatures(("relu1_1",), weights="auto", seed=7)
    assert m.weights_info["used"] == "random" and m.weights_info["seed"] == 7
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "falling back to random weights (seed 7)" in caplog.records[0].getMessage()
    with pytest.raises(EvostyleError, match="offline"):
        VGGFeatures(("relu1_1",), weights="imagenet")


def test_weights_download_has_a_socket_timeout(monkeypatch):
    """The ImageNet download runs under a socket timeout (a firewalled network fails instead of hanging),
    and the caller's timeout is restored afterwards, also when the download fails."""
    import socket
    import urllib.error

    import torchvision.models._api as api

    import evostyle.network.weights as feat
    seen = []

    def no_network(url, *args, **kwargs):
        seen.append(socket.getdefaulttimeout())
        raise urllib.error.URLError("timed out (injected)")
    monkeypatch.setattr(api, "load_state_dict_from_url", no_network)
    before = socket.getdefaulttimeout()
    with pytest.raises(EvostyleError, match="could not load torchvision's ImageNet vgg19 weights.*URLError"):
        VGGFeatures(("relu1_1",), weights="imagenet")
    assert seen == [feat.DOWNLOAD_TIMEOUT_S] and socket.getdefaulttimeout() == before
