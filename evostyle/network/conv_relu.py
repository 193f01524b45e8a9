"""3x3 convolution + bias + ReLU as one operator, for VGG's conv-ReLU pairs.

PyTorch's ``conv2d`` on a GPU runs the cuDNN convolution and then adds the bias in a separate kernel;
the ReLU is a third pass over the map. cuDNN also has the three fused in one kernel
(``torch.cudnn_convolution_relu``), which writes the map once, so the pair costs one pass over the
map instead of three (the measured gain is in docs/performance.md). Under ``torch.compile`` the bias
and ReLU are a fused Triton pass after the convolution; the fused kernel saves that pass too.

Under ``torch.compile``, :func:`conv3x3_relu` is a ``torch.library`` custom operator, so the compiler
keeps it as one opaque call (with a shape-only "fake" implementation for tracing) and autograd uses
our backward: the ReLU's mask, then PyTorch's own convolution backward. In eager mode the same two
halves run as an autograd Function, whose Python costs less per call than the operator's dispatch.
The fused kernel is used for CUDA tensors in bf16 or fp16 with cuDNN enabled; everything else (the
CPU, float32/TF32/float64, so the strict fp32 reference keeps its exact arithmetic) runs
``relu(conv2d(x, w, b))``.

The first layer, on the 3-channel image, suits neither cuDNN kernel: with 27 values per output pixel
the product is bound by memory and cuDNN's kernels for it run far below the matrix units' rate. There
the forward pass builds the 3 x 3 patches explicitly
(B*H*W, 27 padded to 32, channels-last order) and runs one matrix product with bias and ReLU in its
epilogue (``torch._addmm_activation``, cuBLASLt); its output is the channels_last map as it is. The
backward pass stays cuDNN's.

Shapes: x (B, C_in, H, W), w (C_out, C_in, 3, 3), b (C_out,) -> (B, C_out, H, W) (stride 1, padding 1).
"""

import contextlib  # no "from __future__ import annotations": torch 2.4's custom_op reads the hints
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from evostyle.network.device import is_channels_last, is_oom

_ENABLED = True
_CUDNN_FUSED_FAILED = False
"""Set when cuDNN's fused kernel raised (a build or GPU without the fused engine): conv2d + ReLU from
then on in this process, with one warning."""


@contextlib.contextmanager
def fusion(enabled: bool) -> Iterator[None]:
    """Whether the feature extractor uses :func:`conv3x3_relu` (True, the default) or PyTorch's
    modules (False) for the duration: an A/B switch for benchmarks."""
    global _ENABLED
    old, _ENABLED = _ENABLED, bool(enabled)
    try:
        yield
    finally:
        _ENABLED = old


def fusion_enabled() -> bool:
    """See :func:`fusion`."""
    return _ENABLED


def _layout(x: torch.Tensor, w: torch.Tensor) -> torch.memory_format:
    """cuDNN's choice: channels_last if either operand is stored channels_last (as PyTorch's conv)."""
    return torch.channels_last if is_channels_last(x) or is_channels_last(w) else torch.contiguous_format


def _use_cudnn(x: torch.Tensor) -> bool:
    return (x.is_cuda and x.dtype in (torch.bfloat16, torch.float16) and torch.backends.cudnn.enabled
            and torch.backends.cudnn.is_available())


SMALL_C_IN = 8
"""Inputs with fewer channels than this (VGG's first layer: the RGB image) take the patch product."""


def _patch_product_relu(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """relu(conv3x3(x) + b) as one matrix product over explicit patches: (B, C, H, W) -> (B, O, H, W)
    stored channels_last. K = 9*C is padded to a multiple of 8 (the matrix units' alignment).

    The patches are one strided copy out of a (B, H, W, 3, 3, C) window view of the padded image,
    not a concatenation of nine shifted slices (a copy of 3-value runs, slower than the product)."""
    n, c, h, wd = x.shape
    k = 9 * c
    kp = -(-k // 8) * 8
    xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1)).contiguous()  # (B, H+2, W+2, C)
    sb, sh, sw, sc = xp.stride()
    windows = xp.as_strided((n, h, wd, 3, 3, c), (sb, sh, sw, sh, sw, sc))  # [b, y, x, i, j] = xp[b, y+i, x+j]
    cols = x.new_empty(n, h, wd, kp)
    cols[..., k:].zero_()
    cols[..., :k].view(n, h, wd, 3, 3, c).copy_(windows)  # patch order (kh, kw, c), then zeros
    w2 = F.pad(w.permute(0, 2, 3, 1).reshape(w.shape[0], k), (0, kp - k))  # (O, Kp), same order
    out = torch._addmm_activation(b, cols.view(n * h * wd, kp), w2.t())  # (B*H*W, O): relu(cols @ w2^T + b)
    return out.view(n, h, wd, w.shape[0]).permute(0, 3, 1, 2)


def _cudnn_fused(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
    """cuDNN's fused kernel, or None once it has failed in this process (out of memory is re-raised:
    the transfer halves its chunk on that)."""
    global _CUDNN_FUSED_FAILED
    if _CUDNN_FUSED_FAILED:
        return None
    try:
        return torch.cudnn_convolution_relu(x, w, b, (1, 1), (1, 1), (1, 1), 1)
    except RuntimeError as exc:
        if is_oom(exc):
            raise
        _CUDNN_FUSED_FAILED = True
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        warnings.warn(f"cuDNN's fused convolution + ReLU failed ({type(exc).__name__}: {first}); "
                      "running conv2d + ReLU from here on", RuntimeWarning, stacklevel=2)
        return None


def _forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    out = None
    if _use_cudnn(x):
        out = _patch_product_relu(x, w, b) if x.shape[1] < SMALL_C_IN else _cudnn_fused(x, w, b)
    if out is None:
        out = F.relu(F.conv2d(x, w, b, padding=1))
    return out.contiguous(memory_format=_layout(x, w))


def _backward_of(x: torch.Tensor, w: torch.Tensor, out: torch.Tensor, grad: torch.Tensor, needs) -> tuple:
    """Gradients w.r.t. (x, w, b) (None where ``needs`` is False) from the saved input and output."""
    g = torch.ops.aten.threshold_backward(grad, out, 0)  # relu's mask: out > 0 exactly where z > 0
    return tuple(torch.ops.aten.convolution_backward(
        g, x, w, [w.shape[0]], [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [bool(m) for m in needs[:3]]))


@torch.library.custom_op("evostyle::conv3x3_relu", mutates_args=())
def _conv3x3_relu(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _forward(x, w, b)


@_conv3x3_relu.register_fake
def _(x, w, b):
    n, _, h, wd = x.shape
    return torch.empty((n, w.shape[0], h, wd), dtype=x.dtype, device=x.device,
                       memory_format=_layout(x, w))


def _setup_context(ctx, inputs, output):
    x, w, _ = inputs
    ctx.save_for_backward(x, w, output)


def _backward(ctx, grad):
    x, w, out = ctx.saved_tensors
    return _backward_of(x, w, out, grad, ctx.needs_input_grad)


_conv3x3_relu.register_autograd(_backward, setup_context=_setup_context)


class _ConvReluFn(torch.autograd.Function):
    """The same forward and backward for eager mode: a custom operator's Python dispatch costs about
    50 us more per call than this (this project's CPU), 13 calls per forward pass and 13 per backward,
    and a small-batch eager step is bound by the host."""

    @staticmethod
    def forward(ctx, x, w, b):
        out = _forward(x, w, b)
        ctx.save_for_backward(x, w, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w, out = ctx.saved_tensors
        return _backward_of(x, w, out, grad, ctx.needs_input_grad)


def conv3x3_relu(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``relu(conv2d(x, w, b, padding=1))``, fused on CUDA in half precision (see the module doc).

    Operands must share one dtype (callers under autocast cast them first). Under ``torch.compile``
    this is the custom operator (one opaque call in the graph); in eager mode an autograd Function
    with the same arithmetic and less overhead per call.
    """
    if torch.compiler.is_compiling():
        return _conv3x3_relu(x, w, b)
    return _ConvReluFn.apply(x, w, b)
