"""Batched Gatys style transfer: B output images optimised together, each row with its own targets.

Row independence: every loss term is a per-row sum over that row's pixels and features, the network has
no batch-coupled layer, Adam is elementwise and our L-BFGS keeps one history per row, so a row's result
does not depend on the other rows (tested). Large batches are split into chunks of at most
``max_batch`` rows; on out of memory (CUDA's or the CPU allocator's) a chunk is halved and retried.

Run ``python -m evostyle.transfer --help`` for the command line.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from evostyle.errors import ResourceError, flag
from evostyle.network.backbones import backbone
from evostyle.network.device import Precision, available_host_memory, is_oom, resolve_precision, to_host
from evostyle.style.measures import total_variation, upcast_half
from evostyle.transfer.compiling import compiled, fall_back_to_eager, resolve_compile_mode
from evostyle.transfer.config import CUDA_GRAPH_MODES, TransferConfig
from evostyle.transfer.losses import denominators, evaluate_step, loss_terms
from evostyle.transfer.optimisers import INNER_OPTIMIZERS, adam_clamp, sanitise
from evostyle.transfer.state import TransferState

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable, Container

    from torch import nn


@dataclass
class TransferResult:
    """Outcome of :func:`run_transfer` for B rows (all tensors on the CPU).

    images: (B, 3, H, W) in [0, 1]; initial / final: {term: (B,)} with terms ``content``, ``style``
    (weighted sum over layers, times style weight excluded), ``style_<layer>`` (unweighted), ``tv`` and
    ``total``; history: (T, B) total loss at ``history_steps``; failed: (B,) bool, True where the loss
    became NaN/inf (that row's image is its last state); chunk_size: rows per optimisation actually used.
    log: one message per out-of-memory retry or compilation fallback.
    """

    images: torch.Tensor
    initial: dict[str, torch.Tensor]
    final: dict[str, torch.Tensor]
    history: torch.Tensor
    history_steps: list[int]
    failed: torch.Tensor
    seconds: float
    chunk_size: int
    precision: str
    log: list[str] = field(default_factory=list)
    state: TransferState | None = None
    """Where the rows stand, to continue them (``run_transfer(..., keep_state=True)``); else None."""


HOST_MEMORY_SHARE = 0.7
"""Share of the host's available memory a CPU transfer plans to use (the rest is for everything else)."""
BYTES_PER_VALUE = 8
"""Bytes per activation value a CPU transfer step holds at its peak in float32 (measured: 37 MiB per
128 x 128 px row for 6.55 M values, about 6 bytes each; 8 leaves a margin). Doubled for fp64."""


def rows_that_fit(hw: tuple[int, int], cfg: TransferConfig, device: torch.device | str) -> int | None:
    """How many rows of (H, W) = ``hw`` px a CPU transfer can optimise at once in the host's available
    memory (None on a GPU, where an out-of-memory error halves the chunk instead, or when the host does
    not say). Raises :class:`~evostyle.errors.ResourceError` if not even one row fits."""
    if torch.device(device).type != "cpu":
        return None
    avail = available_host_memory()
    if avail is None:
        return None
    net = backbone(cfg.network)
    values = net.activation_values(hw, net.deepest(list(cfg.style_layers) + [cfg.content_layer]))
    per_row = values * BYTES_PER_VALUE * (2 if cfg.precision == "fp64" else 1)
    fit = int(avail * HOST_MEMORY_SHARE // per_row)
    if fit < 1:
        raise ResourceError(f"one {hw[1]}x{hw[0]} px output needs about {per_row / 2**30:.1f} GiB for its transfer "
                            f"on the CPU and {avail / 2**30:.1f} GiB are available; lower {flag('size')}")
    return fit


def _init_images(content: torch.Tensor, n: int, cfg: TransferConfig, noise_seeds: list[int],
                 amplitudes: torch.Tensor | None = None) -> torch.Tensor:
    """The (n, 3, H, W) start images: ``cfg.init``'s, or, where ``amplitudes`` (n,) gives a row its own
    noise amplitude a, the content plus a * uniform noise in [-1, 1] from the row's seed, clamped to
    [0, 1] (a = 0: the content itself)."""
    rows = []
    for i, s in enumerate(noise_seeds[:n]):
        if amplitudes is not None:
            a = float(amplitudes[i])
        else:
            a = cfg.init_noise if cfg.init == "content+noise" else 0.0
        if cfg.init != "noise" and a == 0:
            rows.append(content.clone())
            continue
        gen = torch.Generator().manual_seed(int(s))
        noise = torch.rand(content.shape, generator=gen)
        if cfg.init == "noise":
            rows.append(noise)
        else:
            rows.append((content + a * (2 * noise - 1)).clamp(0, 1))
    return torch.stack(rows)


def _optimise_chunk(model, content, content_feat, targets, layer_w, cw, sw, cfg, prec, device, seeds, note,
                    progress=None, amplitudes=None, diversity=None, start=None, keep=False, init=None,
                    snapshot=None):
    """Optimise one chunk of rows from their start images (``init``, else ``cfg.init``'s), or from
    ``start`` (their :class:`TransferState`); returns (images, initial, final, history, failed, state or
    None) on the CPU, the state if ``keep``. ``snapshot``: (steps, fn), fn(step, images) called with the
    chunk's images after each of ``steps`` (before the last)."""
    n = cw.shape[0]
    mode = resolve_compile_mode(cfg.compile_mode, device)
    terms_fn = compiled(loss_terms, mode) if cfg.compile else loss_terms
    graphs = cfg.compile and mode in CUDA_GRAPH_MODES
    x = start.images if start is not None else init if init is not None else \
        _init_images(content.cpu(), n, cfg, seeds, amplitudes)
    x = x.to(device=device, dtype=prec.dtype)
    if prec.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    opt = INNER_OPTIMIZERS[cfg.optimizer](x, cfg.resolved_lr)
    update = None if cfg.optimizer != "adam" else compiled(adam_clamp, mode) if cfg.compile else adam_clamp
    failed = torch.zeros(n, dtype=torch.bool, device=device)
    if start is not None:
        if start.optimizer != cfg.optimizer:
            raise ValueError(f"a {start.optimizer} transfer cannot continue with {cfg.optimizer}")
        opt.load(start.buffers)
        failed |= start.failed.to(device)
    targets = {l: t.to(prec.dtype) for l, t in targets.items()}
    history, initial = [], None
    args = (model, x, content_feat, targets, denominators(content_feat, targets, cfg), layer_w, cw, sw, cfg,
            prec, device, diversity)
    for step in range(int(cfg.steps) + 1):
        last = step == int(cfg.steps)
        if snapshot is not None and not last and step in snapshot[0]:
            snapshot[1](step, to_host(x.detach().float()))
        # the last, gradient-free evaluation runs eager: compiling it would be a second graph
        fn = loss_terms if last else terms_fn
        if graphs and not last:  # a new iteration: the last one's graph outputs (all used by now) may be reused
            torch.compiler.cudagraph_mark_step_begin()
        try:
            terms, grad = evaluate_step(fn, args, failed, last)
        except Exception as exc:  # compilation failed (no compiler, unsupported op...): go on eager
            fall_back_to_eager(exc, fn is loss_terms, note)
            terms_fn, update = loss_terms, (None if update is None else adam_clamp)
            terms, grad = evaluate_step(loss_terms, args, failed, last)
        total = terms["total"]
        if initial is None:
            if "tv" not in terms:  # an unweighted TV is left out of the steps; reported here
                terms = {**{k: v for k, v in terms.items() if k != "total"},
                         "tv": total_variation(x.detach()), "total": total}
            initial = {k: v.detach().float().cpu() for k, v in terms.items()}
        if step % cfg.history_every == 0 or last:
            history.append((step, total.detach().float().cpu()))
        if last:
            break
        if progress is not None:
            progress(step + 1, int(cfg.steps))
        if update is not None:  # Adam; compiled, the sanitising, the step and the clamp are one kernel
            try:
                opt.step(grad, failed, update)
            except Exception as exc:  # compiling the update failed
                fall_back_to_eager(exc, update is adam_clamp, note)
                terms_fn, update = loss_terms, adam_clamp
                opt.t -= 1  # the failed call changed nothing
                opt.step(grad, failed, update)
            continue
        opt.step(sanitise(grad, failed))  # L-BFGS
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
    final = {k: v.detach().float().cpu() for k, v in terms.items()}
    state = None
    if keep:
        done = (start.steps if start is not None else torch.zeros(n, dtype=torch.long)) + int(cfg.steps)
        state = TransferState(x.detach().cpu().contiguous(), done, failed.cpu(), cfg.optimizer, opt.state())
    return to_host(x.detach().float()), initial, final, history, failed.cpu(), state


@contextlib.contextmanager
def _cudnn_benchmark(on: bool):
    """Set ``torch.backends.cudnn.benchmark`` for the duration (restored afterwards)."""
    old = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = old


def run_transfer(
    model: nn.Module,
    content: torch.Tensor,
    targets: dict[str, torch.Tensor],
    cfg: TransferConfig,
    layer_weights: torch.Tensor | None = None,
    content_weights: torch.Tensor | None = None,
    style_weights: torch.Tensor | None = None,
    noise_seeds: list[int] | None = None,
    device: torch.device | None = None,
    log: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    init_noise: torch.Tensor | None = None,
    content_perturbation: torch.Tensor | None = None,
    diversity_weights: torch.Tensor | None = None,
    group: int = 1,
    start: TransferState | None = None,
    keep_state: bool = False,
    init_images: torch.Tensor | None = None,
    snapshot: tuple[Container[int], Callable[[int, int, torch.Tensor], None]] | None = None,
    check: bool = True,
) -> TransferResult:
    """Optimise B images at once.

    Args:
        model: a :class:`~evostyle.network.features.VGGFeatures` with the style and content layers. With
            channels_last (the CUDA default) its weights are converted to that layout in place (same
            values; a copy per call would cost the engine, which reuses one model, memory and time).
        content: (3, H, W) content image in [0, 1]; shared by all rows.
        targets: {style layer: (B, ...)} per-row style statistics (see
            :meth:`~evostyle.style.targets.StyleTargets.build`).
        cfg: :class:`TransferConfig`; checked (:meth:`TransferConfig.validate`) unless ``check`` is
            False, which :class:`~evostyle.transfer.engine.StyleEngine` passes for the config it
            checked when it was built.
        layer_weights: (B, L) per-row style-layer weights (default 1 for every layer).
        content_weights / style_weights: (B,) per-row multipliers of cfg's content / style weight.
        noise_seeds: B ints seeding each row's noise init (default 0..B-1).
        init_noise: (B,) per-row noise amplitudes of a content start (``cfg.init`` content or
            content+noise): row b starts from content + init_noise[b] * (2 u - 1), u uniform from its
            seed (0: the content itself); None: ``cfg.init_noise`` for content+noise.
        content_perturbation: (B,) strengths in [0, 1] of each row's content-target perturbation
            (:func:`evostyle.style.perturb.perturb_features`, its orthogonal matrix from the row's
            seed; 0: the content's own features); None: every row's target is the content's.
        diversity_weights / group: (B,) weights of an inner diversity reward among each group of
            ``group`` consecutive rows (a candidate's outputs;
            :func:`~evostyle.transfer.losses.diversity_term` at the content layer), subtracted from
            each row's total; chunks then hold whole groups. A group's rows are coupled by it; rows of
            other groups stay independent.
        start: where the B rows' transfers stand (a :class:`~evostyle.transfer.state.TransferState` a
            ``keep_state`` run returned, rows selected and joined as needed): they go on from there for
            ``cfg.steps`` more steps, with the same targets, weights and seeds, instead of starting from
            their start images. Rows continued together must have taken the same number of steps.
        keep_state: also return where the rows stand (``TransferResult.state``), to continue them.
        init_images: (B, 3, H, W) start images in [0, 1], the content's size, instead of ``cfg.init``'s
            (neural-style's ``-init_image``; a coarse-to-fine transfer's upsampled coarser result);
            ``init_noise`` is then not used. Not with ``start``.
        snapshot: (steps, fn): fn(step, first_row, images (n, 3, H, W) on the CPU) after each of
            ``steps`` (those before the last), for each chunk of rows from ``first_row`` (neural-style's
            ``-save_iter``; the final images are the result's).
        log: optional callable(str), called for each out-of-memory retry or compilation fallback.
        progress: optional callable(step, steps), called after each step of each chunk of rows (a
            progress bar: :func:`evostyle.progress.step_counter`).
    """
    if check:
        cfg.validate()
    device = device or next(model.parameters()).device
    prec: Precision = resolve_precision(cfg.precision, device, cfg.channels_last)
    b = next(iter(targets.values())).shape[0]
    L = len(cfg.style_layers)
    lw = torch.ones(b, L) if layer_weights is None else torch.as_tensor(layer_weights, dtype=torch.float32)
    cw = torch.ones(b) if content_weights is None else torch.as_tensor(content_weights, dtype=torch.float32)
    sw = torch.ones(b) if style_weights is None else torch.as_tensor(style_weights, dtype=torch.float32)
    lw, cw, sw = lw.reshape(b, L).to(device), cw.reshape(b).to(device) * cfg.content_weight, \
        sw.reshape(b).to(device) * cfg.style_weight
    seeds = list(range(b)) if noise_seeds is None else [int(s) for s in noise_seeds]
    if start is not None and len(start) != b:
        raise ValueError(f"a start state of {len(start)} rows for {b} rows of targets")
    if init_images is not None:
        if start is not None:
            raise ValueError("a transfer starts from init_images or continues from a start state, not both")
        if tuple(init_images.shape) != (b, 3, *content.shape[-2:]):
            raise ValueError(f"init_images of shape {tuple(init_images.shape)} for {b} rows of "
                             f"{tuple(content.shape[-2:])} px")
    if prec.dtype == torch.float64:
        model = copy.deepcopy(model).double()
    if prec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    content = content.to(device=device, dtype=prec.dtype)
    lw, cw, sw = lw.to(prec.dtype), cw.to(prec.dtype), sw.to(prec.dtype)
    messages: list[str] = []

    def note(msg):
        messages.append(msg)
        if log:
            log(msg)

    t0 = time.perf_counter()
    group = int(group) if diversity_weights is not None else 1
    whole = lambda n: max(group, n // group * group)  # a chunk of whole groups: the reward couples a group
    chunk = whole(min(b, int(cfg.max_batch) if cfg.max_batch else b))
    fit = rows_that_fit(tuple(content.shape[-2:]), cfg, device)
    if fit is not None and fit < chunk:  # on the CPU running out of memory kills the process: plan ahead
        note(f"{chunk} rows at once would not fit in the host's memory; running {whole(fit)} at a time")
        chunk = whole(fit)
    parts, lo = [], 0
    with _cudnn_benchmark(device.type == "cuda" and bool(cfg.autotune)), prec.matmul_mode():
        with torch.no_grad(), prec.autocast(device):
            content_feat = model(content[None], (cfg.content_layer,))[cfg.content_layer].to(prec.dtype)
        if diversity_weights is not None:
            dw = torch.as_tensor(diversity_weights).reshape(b).to(device=device, dtype=prec.dtype)
            # from the one unperturbed content row, before any perturbation: a mean over the batch's
            # perturbed rows would make a candidate's reward depend on the candidates it shares a batch with
            scale = upcast_half(content_feat).abs().mean().clamp_min(1e-12)
        if content_perturbation is not None:
            from evostyle.style.perturb import perturb_features
            content_feat = perturb_features(content_feat, torch.as_tensor(content_perturbation).reshape(b), seeds)
        while lo < b:
            stop = min(b, lo + chunk)
            sl = slice(lo, stop)
            try:
                parts.append(_optimise_chunk(
                    model, content, content_feat if content_feat.shape[0] == 1 else content_feat[sl],
                    {l: t[sl] for l, t in targets.items()}, lw[sl], cw[sl],
                    sw[sl], cfg, prec, device, seeds[sl], note, progress,
                    None if init_noise is None else init_noise[sl],
                    None if diversity_weights is None else (dw[sl], group, scale),
                    None if start is None else start.rows(sl), keep_state,
                    None if init_images is None else init_images[sl].cpu(),
                    None if snapshot is None else (snapshot[0], lambda step, x, lo=lo: snapshot[1](step, lo, x))))
            except (torch.cuda.OutOfMemoryError, RuntimeError, MemoryError) as exc:
                if not is_oom(exc) or chunk == group:
                    raise
                chunk = whole(chunk // 2)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                note(f"out of memory at {stop - lo} rows per chunk; retrying with {chunk}")
                continue
            lo = stop
    images = torch.cat([p[0] for p in parts])
    initial = {k: torch.cat([p[1][k] for p in parts]) for k in parts[0][1]}
    final = {k: torch.cat([p[2][k] for p in parts]) for k in parts[0][2]}
    steps = [s for s, _ in parts[0][3]]
    history = torch.stack([torch.cat([p[3][i][1] for p in parts]) for i in range(len(steps))])
    failed = torch.cat([p[4] for p in parts])
    state = TransferState.cat([p[5] for p in parts]) if keep_state else None
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return TransferResult(images, initial, final, history, steps, failed, time.perf_counter() - t0,
                          chunk, prec.name, messages, state)
