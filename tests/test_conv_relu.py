"""The fused convolution + bias + ReLU operator (evostyle.conv_relu). Its cuDNN kernels need a GPU;
on the CPU the operator runs relu(conv2d), which checks its registration, its backward (the one the
GPU path uses) and how the feature extractor routes through it."""

import pytest
import torch
import torch.nn.functional as F

from evostyle.network.conv_relu import _conv3x3_relu, _patch_product_relu, conv3x3_relu, fusion, fusion_enabled
from evostyle.network.features import VGGFeatures


def _operands(c_in=4, c_out=5, hw=(6, 7), dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c_in, *hw, generator=gen, dtype=dtype)
    w = torch.randn(c_out, c_in, 3, 3, generator=gen, dtype=dtype)
    b = torch.randn(c_out, generator=gen, dtype=dtype)
    return x, w, b


@pytest.mark.parametrize("fn", [conv3x3_relu, _conv3x3_relu], ids=["eager Function", "custom operator"])
def test_value_and_gradient_match_conv2d_relu(fn):
    x, w, b = (t.requires_grad_(True) for t in _operands())
    assert torch.autograd.gradcheck(fn, (x, w, b))
    out = fn(x, w, b)
    ref = F.relu(F.conv2d(x, w, b, padding=1))
    assert torch.equal(out, ref) and (out == 0).any() and (out > 0).any()  # the mask matters


def test_the_compiler_sees_the_custom_operator(monkeypatch):
    """While torch.compile traces, the public function is the custom operator (opaque to the
    compiler); in eager mode it is not (the operator's dispatch costs more per call)."""
    import evostyle.network.conv_relu as cr
    seen = []
    monkeypatch.setattr(cr, "_conv3x3_relu", lambda *a: seen.append(1) or cr._forward(*a))
    x, w, b = _operands()
    conv3x3_relu(x, w, b)
    assert seen == []
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert torch.equal(conv3x3_relu(x, w, b), F.relu(F.conv2d(x, w, b, padding=1))) and seen == [1]


def test_operator_registration_passes_opcheck():
    """Schema, fake (shape-only) implementation, autograd registration: what torch.compile relies on."""
    x, w, b = _operands()
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    result = torch.library.opcheck(_conv3x3_relu, (x, w, b))
    assert all(v == "SUCCESS" for v in result.values()), result


@pytest.mark.parametrize("c_in", [3, 5])
@pytest.mark.parametrize("channels_last", [True, False])
def test_patch_product_equals_the_convolution(c_in, channels_last):
    """The first layer's GPU path (explicit 3x3 patches, one matrix product): same map, channels_last."""
    x, w, b = _operands(c_in=c_in, hw=(7, 9), seed=c_in)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    out = _patch_product_relu(x, w, b)
    assert torch.allclose(out, F.relu(F.conv2d(x, w, b, padding=1)), atol=1e-12)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_extractor_routes_through_the_operator_under_autocast(monkeypatch):
    """Under autocast each conv + ReLU pair goes through the operator (same features as the modules);
    with ``fusion(False)``, or without autocast, the modules run."""
    import evostyle.network.features as feats
    model = VGGFeatures(weights="random", seed=1)
    img = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    calls = []
    real = feats.conv3x3_relu
    monkeypatch.setattr(feats, "conv3x3_relu", lambda *a: calls.append(a[0].shape) or real(*a))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = model(img)
        assert len(calls) == 13  # conv1_1 .. conv5_1
        with fusion(False):
            assert not fusion_enabled()
            modules = model(img)
        assert len(calls) == 13 and fusion_enabled()
    for name in fused:
        assert fused[name].dtype == torch.bfloat16
        assert torch.equal(fused[name], modules[name]), name
    model(img)
    assert len(calls) == 13  # float32: the modules


def test_a_conv_tap_is_not_fused():
    """A tap on a convolution (before its ReLU) needs the pre-activation map."""
    model = VGGFeatures(("conv1_2", "relu2_1"), weights="random", seed=1)
    img = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(img)
    assert (out["conv1_2"] < 0).any()  # not ReLU'd
    assert (out["relu2_1"] >= 0).all()


def test_a_failing_fused_kernel_falls_back_once(monkeypatch):
    """If cuDNN's fused kernel raises (no fused engine in a build), the operator warns once and runs
    conv2d + ReLU from then on; out of memory is passed on (the transfer halves its chunk on it)."""
    import evostyle.network.conv_relu as cr
    calls = []

    def broken(*args):
        calls.append(1)
        raise RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED (injected)")

    monkeypatch.setattr(cr, "_use_cudnn", lambda x: True)
    monkeypatch.setattr(torch, "cudnn_convolution_relu", broken)
    monkeypatch.setattr(cr, "_CUDNN_FUSED_FAILED", False)
    x, w, b = _operands(c_in=8)
    ref = F.relu(F.conv2d(x, w, b, padding=1))
    with pytest.warns(RuntimeWarning, match="CUDNN_STATUS_NOT_SUPPORTED"):
        assert torch.equal(conv3x3_relu(x, w, b), ref)
    assert torch.equal(conv3x3_relu(x, w, b), ref) and calls == [1]  # not tried again

    def oom(*args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")

    monkeypatch.setattr(torch, "cudnn_convolution_relu", oom)
    monkeypatch.setattr(cr, "_CUDNN_FUSED_FAILED", False)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        conv3x3_relu(x, w, b)
    assert not cr._CUDNN_FUSED_FAILED


def test_half_weights_are_cast_once_and_follow_the_parameters():
    """Under autocast the extractor keeps each pair's bf16 weights between forward passes (no casts
    per pass) and casts again when a parameter changes in place or moves to another layout; the
    features always equal the modules' (``fusion(False)``)."""
    model = VGGFeatures(("relu2_1",), weights="random", seed=1)
    img = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(4))

    def both():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fused = model(img)["relu2_1"]
            with fusion(False):
                return fused, model(img)["relu2_1"]

    fused, ref = both()
    assert torch.equal(fused, ref)
    cached = {k: v[1] for k, v in model._half.items()}
    assert len(cached) == 3  # conv1_1, conv1_2 and conv2_1, each with the ReLU after it
    both()
    assert all(model._half[k][1] is w for k, w in cached.items())  # reused, not cast again
    with torch.no_grad():
        model.body[2].weight.mul_(2)  # conv1_2, in place
    fused, ref = both()
    assert torch.equal(fused, ref)
    assert model._half[(2, torch.bfloat16)][1] is not cached[(2, torch.bfloat16)]
    assert model._half[(0, torch.bfloat16)][1] is cached[(0, torch.bfloat16)]
    model.to(memory_format=torch.channels_last)
    fused, ref = both()
    assert torch.equal(fused, ref)
    assert model._half[(0, torch.bfloat16)][1].is_contiguous(memory_format=torch.channels_last)
    model.body[0].weight.requires_grad_(True)  # a trainable parameter: cast each call, gradient flows
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(img)["relu2_1"].float().sum().backward()
    assert model.body[0].weight.grad is not None and model.body[0].weight.grad.abs().sum() > 0
