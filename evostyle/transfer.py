"""Batched Gatys style transfer: B output images optimised together, each row with its own targets.

Row independence: every loss term is a per-row sum over that row's pixels and features, the network has
no batch-coupled layer, Adam is elementwise and our L-BFGS keeps one history per row, so a row's result
does not depend on the other rows (tested). Large batches are split into chunks of at most
``max_batch`` rows; on CUDA out-of-memory a chunk is halved and retried.

Run ``python -m evostyle.transfer --help`` for the command line.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field

import torch

from .device import Precision, available_host_memory, is_oom, resolve_precision, to_host
from .errors import EvostyleError, ResourceError, describe, unknown
from .features import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS, LAYER_INDEX, activation_values
from .measures import content_term, sq_norm, style_term, total_variation

OPTIMIZERS = ("adam", "lbfgs")
INITS = ("content", "noise", "content+noise")
COMPILE_MODES = ("auto", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
"""torch.compile's modes, and ``auto`` (see :func:`resolve_compile_mode`)."""
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")
"""The modes that record CUDA graphs (on CUDA)."""


@dataclass
class TransferConfig:
    """Settings of the inner optimisation (units: weights are dimensionless, lr in [0,1] intensity)."""

    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    content_layer: str = DEFAULT_CONTENT_LAYER
    measure: str = "gram"
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 0.0
    steps: int = 300
    optimizer: str = "adam"
    lr: float = 0.02
    init: str = "content"
    init_noise: float = 0.1
    normalize: bool = True
    history_every: int = 10
    max_batch: int | None = None
    precision: str = "auto"
    channels_last: bool | None = None
    autotune: bool = False
    """On CUDA, let cuDNN time its convolution algorithms for each new shape (``cudnn.benchmark``).
    Off by default: on an H100 at 256 px it changed nothing measurable (docs/performance.md)."""
    compile: bool = False
    """Run the forward pass and losses through ``torch.compile`` (fuses the elementwise work around the
    convolutions; costs a compilation per new batch shape; falls back to eager with a log message if
    compilation fails). With Adam, the update (sanitised gradient, Adam, clamp) is compiled too, into
    one kernel instead of about eleven passes over the images."""
    compile_mode: str = "auto"
    """torch.compile's mode when ``compile`` is on. ``reduce-overhead`` also records each step's kernels
    in CUDA graphs and replays them with one launch (for steps bound by the host's launching: small
    batches); ``max-autotune`` times kernel variants too (a much longer compilation). ``auto`` (the
    default) is ``reduce-overhead`` on CUDA and ``default`` elsewhere: on an H100 at 256 px the graphs
    made a batch-8 step 2.4x faster and left batches 16-64 within the timing noise
    (docs/performance.md)."""

    def validate(self) -> "TransferConfig":
        from .features import check_layers
        from .measures import MEASURES
        check_layers(list(self.style_layers) + [self.content_layer])
        if self.measure not in MEASURES:
            raise unknown("measure", self.measure, MEASURES)
        if self.compile_mode not in COMPILE_MODES:
            raise unknown("compile mode", self.compile_mode, COMPILE_MODES)
        if self.optimizer not in OPTIMIZERS:
            raise unknown("optimizer", self.optimizer, OPTIMIZERS)
        if self.init not in INITS:
            raise unknown("init", self.init, INITS)
        if int(self.steps) <= 0:
            raise EvostyleError(f"steps must be a positive integer, got {self.steps}")
        for name in ("content_weight", "style_weight", "tv_weight", "init_noise"):
            v = float(getattr(self, name))
            if not (v >= 0 and v < float("inf")):
                raise EvostyleError(f"{name.replace('_', '-')} must be finite and >= 0, got {v}")
        if not (float(self.lr) > 0):
            raise EvostyleError(f"learning rate must be > 0, got {self.lr}")
        if self.max_batch is not None and int(self.max_batch) < 1:
            raise EvostyleError(f"max batch must be >= 1, got {self.max_batch}")
        if int(self.history_every) < 1:
            raise EvostyleError("history_every must be >= 1")
        return self


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


HOST_MEMORY_SHARE = 0.7
"""Share of the host's available memory a CPU transfer plans to use (the rest is for everything else)."""
BYTES_PER_VALUE = 8
"""Bytes per activation value a CPU transfer step holds at its peak in float32 (measured: 37 MiB per
128 x 128 px row for 6.55 M values, about 6 bytes each; 8 leaves a margin). Doubled for fp64."""


def rows_that_fit(hw: tuple[int, int], cfg: TransferConfig, device) -> int | None:
    """How many rows of (H, W) = ``hw`` px a CPU transfer can optimise at once in the host's available
    memory (None on a GPU, where an out-of-memory error halves the chunk instead, or when the host does
    not say). Raises :class:`~evostyle.errors.ResourceError` if not even one row fits."""
    if torch.device(device).type != "cpu":
        return None
    avail = available_host_memory()
    if avail is None:
        return None
    deepest = max(list(cfg.style_layers) + [cfg.content_layer], key=LAYER_INDEX.__getitem__)
    per_row = activation_values(hw, deepest) * BYTES_PER_VALUE * (2 if cfg.precision == "fp64" else 1)
    fit = int(avail * HOST_MEMORY_SHARE // per_row)
    if fit < 1:
        raise ResourceError(f"one {hw[1]}x{hw[0]} px output needs about {per_row / 2**30:.1f} GiB for its transfer "
                            f"on the CPU and {avail / 2**30:.1f} GiB are available; lower --size")
    return fit


def _denominators(content_feat, targets, cfg) -> dict:
    """{"content" and each style layer: the target's squared norm (B or 1,)}, the fixed denominators
    of the normalised terms, computed once per optimisation; {} when ``cfg.normalize`` is off."""
    if not cfg.normalize:
        return {}
    return {"content": sq_norm(content_feat), **{l: sq_norm(targets[l]) for l in cfg.style_layers}}


def _terms(model, x, content_feat, targets, denoms, layer_w, cw, sw, cfg, prec, device, tv: bool = True):
    """Forward pass and named per-row loss terms for images x (B,3,H,W); ``denoms`` from
    :func:`_denominators`. ``tv=False`` leaves out the total variation, which is allowed only when its
    weight is 0 (then it is only reported, and the optimisation steps need not compute it)."""
    with prec.autocast(device):
        feats = model(x)
    terms = {"content": content_term(feats[cfg.content_layer], content_feat, cfg.normalize, denoms.get("content"))}
    per_layer = [style_term(feats[l], targets[l], cfg.measure, cfg.normalize, denoms.get(l))
                 for l in cfg.style_layers]
    terms.update({f"style_{l}": t for l, t in zip(cfg.style_layers, per_layer)})
    style = (layer_w * torch.stack(per_layer, 1)).sum(1)  # (B, L) weights: three operators, not 3L
    terms["style"] = style
    total = cw * terms["content"] + sw * style
    if tv or cfg.tv_weight:
        # with no TV weight the term is only reported: keep it out of the backward pass (its slices'
        # gradient is image-sized work in the other memory layout, which then slows every Adam update)
        terms["tv"] = total_variation(x if cfg.tv_weight else x.detach())
        total = total + cfg.tv_weight * terms["tv"]
    terms["total"] = total
    return terms


_COMPILED: dict = {}
"""{(function, mode): ``torch.compile(function, mode=mode)``}, each built on first use in this process."""
_COMPILE_FAILED = False
"""Set once a compilation failed: later transfers in this process run eager without trying again."""


def _compiled(fn, mode: str = "default"):
    """``torch.compile(fn, mode=mode)`` (``_terms`` or ``_adam_clamp``), built once per process and
    mode; ``fn`` itself once a compilation has failed."""
    if _COMPILE_FAILED:
        return fn
    if (fn, mode) not in _COMPILED:
        # static shapes: a search has one batch shape (P*K rows; its K-row baseline runs eager), and
        # kernels specialised to a shape are the fast ones; each new shape compiles once
        _COMPILED[(fn, mode)] = torch.compile(fn, dynamic=False, mode=mode)
    return _COMPILED[(fn, mode)]


def resolve_compile_mode(mode: str, device) -> str:
    """The torch.compile mode that ``mode`` means on ``device`` (a torch.device or its name):
    ``auto`` is ``reduce-overhead`` on CUDA (CUDA graphs) and ``default`` elsewhere, where inductor
    records no graphs; any other mode is itself."""
    if mode != "auto":
        return mode
    return "reduce-overhead" if torch.device(device).type == "cuda" else "default"


def _fall_back_to_eager(exc: BaseException, ran_eager: bool, note):
    """Handle ``exc`` raised by a step or an update: re-raise it if that code ran eager or ran out of
    memory (the transfer halves its chunk on that); else it is a failed compilation: log it, and this
    process runs eager from here on."""
    global _COMPILE_FAILED
    if ran_eager or is_oom(exc):
        raise exc
    _COMPILE_FAILED = True
    note(f"torch.compile failed ({describe(exc)}); running eager from here on")


def reset_compile():
    """Forget the compiled functions (and any earlier failure): the next compiled transfer compiles
    anew."""
    global _COMPILED, _COMPILE_FAILED
    _COMPILED, _COMPILE_FAILED = {}, False


def compile_disabled() -> bool:
    """True once a compilation has failed in this process: transfers asking for ``compile`` run eager."""
    return _COMPILE_FAILED


def _evaluate(fn, args, failed: torch.Tensor, last: bool):
    """Loss terms of one step through ``fn`` and, unless ``last``, the gradient w.r.t. the images.

    ``args`` are ``_terms``' arguments (the images x second); ``failed`` (B,) is updated in place with
    rows whose total loss is not finite. The total variation is computed in the steps only if it is
    weighted, and always in the ``last`` evaluation, which reports it. Returns (terms, grad or None).
    """
    with torch.set_grad_enabled(not last):
        terms = fn(*args, tv=last)
    total = terms["total"]
    failed |= ~torch.isfinite(total)
    if last:
        return terms, None
    loss = torch.where(failed, torch.zeros_like(total), total).sum()
    x = args[1]
    grad, = torch.autograd.grad(loss, x)
    if x.is_contiguous(memory_format=torch.channels_last) and not grad.is_contiguous(
            memory_format=torch.channels_last):  # one copy here instead of mixed-layout Adam kernels
        grad = grad.contiguous(memory_format=torch.channels_last)
    return terms, grad


def _init_images(content: torch.Tensor, n: int, cfg: TransferConfig, noise_seeds: list[int]) -> torch.Tensor:
    rows = []
    for s in noise_seeds:
        if cfg.init == "content":
            rows.append(content.clone())
            continue
        gen = torch.Generator().manual_seed(int(s))
        noise = torch.rand(content.shape, generator=gen)
        if cfg.init == "noise":
            rows.append(noise)
        else:
            rows.append((content + cfg.init_noise * (2 * noise - 1)).clamp(0, 1))
    return torch.stack(rows)[:n]


def _sanitise(grad: torch.Tensor, failed: torch.Tensor) -> torch.Tensor:
    """The gradient (B, 3, H, W) with NaN/inf replaced by finite values and failed rows (B,) zeroed."""
    return torch.where(failed.view(-1, 1, 1, 1), torch.zeros_like(grad), torch.nan_to_num(grad))


def _adam_clamp(x, m, v, grad, failed, step_size, bc2_sqrt, b1: float, b2: float, eps: float):
    """In place: one Adam step of the images x on the sanitised gradient, then x clamped to [0, 1].

    x, m, v, grad: (B, 3, H, W); failed: (B,) bool; step_size = lr / (1 - b1^t) and bc2_sqrt =
    sqrt(1 - b2^t) are 0-d tensors, so that one compiled version (one fused kernel) serves every step.
    """
    g = _sanitise(grad, failed)
    m.lerp_(g, 1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    x.sub_(step_size * m / (v.sqrt() / bc2_sqrt + eps))
    x.clamp_(0.0, 1.0)


class _Adam:
    """Adam (Kingma & Ba 2015) on one tensor, the arithmetic of ``torch.optim.Adam`` to rounding
    (elementwise, so rows stay independent); kept here to avoid torch.optim's import-time cost and to
    fuse the update into one kernel when compiled."""

    def __init__(self, x: torch.Tensor, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.x, self.lr, self.b1, self.b2, self.eps = x, lr, betas[0], betas[1], eps
        self.m = torch.zeros_like(x)
        self.v = torch.zeros_like(x)
        self.t = 0
        self._step_size, self._bc2_sqrt = x.new_zeros(()), x.new_zeros(())  # 0-d: filled each step

    @torch.no_grad()
    def step(self, grad: torch.Tensor, failed: torch.Tensor, fn=_adam_clamp):
        """Sanitise the gradient, step and clamp the images to [0, 1], through ``fn`` (``_adam_clamp``
        or its compiled version)."""
        self.t += 1
        self._step_size.fill_(self.lr / (1 - self.b1 ** self.t))
        self._bc2_sqrt.fill_((1 - self.b2 ** self.t) ** 0.5)
        fn(self.x, self.m, self.v, grad, failed, self._step_size, self._bc2_sqrt, self.b1, self.b2, self.eps)


class _BatchedLBFGS:
    """L-BFGS without line search (as torch.optim.LBFGS with line_search_fn=None) kept per row."""

    def __init__(self, x: torch.Tensor, lr: float, history: int = 10):
        self.x, self.lr, self.m = x, lr, history
        self.s, self.y, self.rho = [], [], []
        self.gamma = torch.ones(x.shape[0], device=x.device)
        self.prev_x = self.prev_g = None

    @torch.no_grad()
    def step(self, grad: torch.Tensor):
        b = grad.shape[0]
        g = grad.reshape(b, -1).double()
        x = self.x.detach().reshape(b, -1).double().clone()  # a copy: self.x changes in place
        if self.prev_g is not None:
            s, y = x - self.prev_x, g - self.prev_g
            ys = (s * y).sum(1)
            ok = ys > 1e-10
            rho = torch.where(ok, 1.0 / ys.clamp_min(1e-10), torch.zeros_like(ys))
            self.s.append(s * ok[:, None]), self.y.append(y * ok[:, None]), self.rho.append(rho)
            if len(self.s) > self.m:
                self.s.pop(0), self.y.pop(0), self.rho.pop(0)
            yy = (y * y).sum(1).clamp_min(1e-30)
            self.gamma = torch.where(ok, ys / yy, self.gamma.double())
        q, alphas = g.clone(), []
        for s, y, r in zip(reversed(self.s), reversed(self.y), reversed(self.rho)):
            a = r * (s * q).sum(1)
            q -= a[:, None] * y
            alphas.append(a)
        z = self.gamma.double()[:, None] * q
        for (s, y, r), a in zip(zip(self.s, self.y, self.rho), reversed(alphas)):
            z += s * (a - r * (y * z).sum(1))[:, None]
        if self.prev_g is None:
            t = (self.lr * torch.clamp(1.0 / g.abs().sum(1).clamp_min(1e-30), max=1.0))[:, None]
        else:
            t = self.lr
        self.prev_x, self.prev_g = x, g
        new = (x - t * z).reshape(self.x.shape)
        self.x.copy_(new.to(self.x.dtype))


def _optimise_chunk(model, content, content_feat, targets, layer_w, cw, sw, cfg, prec, device, seeds, note):
    """Optimise one chunk of rows; returns (images, initial, final, history, failed) on the CPU."""
    n = cw.shape[0]
    mode = resolve_compile_mode(cfg.compile_mode, device)
    terms_fn = _compiled(_terms, mode) if cfg.compile else _terms
    graphs = cfg.compile and mode in CUDA_GRAPH_MODES
    x = _init_images(content.cpu(), n, cfg, seeds).to(device=device, dtype=prec.dtype)
    if prec.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    opt = _Adam(x, cfg.lr) if cfg.optimizer == "adam" else _BatchedLBFGS(x, cfg.lr)
    update = None if cfg.optimizer != "adam" else _compiled(_adam_clamp, mode) if cfg.compile else _adam_clamp
    failed = torch.zeros(n, dtype=torch.bool, device=device)
    targets = {l: t.to(prec.dtype) for l, t in targets.items()}
    history, initial = [], None
    args = (model, x, content_feat, targets, _denominators(content_feat, targets, cfg), layer_w, cw, sw, cfg,
            prec, device)
    for step in range(int(cfg.steps) + 1):
        last = step == int(cfg.steps)
        # the last, gradient-free evaluation runs eager: compiling it would be a second graph
        fn = _terms if last else terms_fn
        if graphs and not last:  # a new iteration: the last one's graph outputs (all used by now) may be reused
            torch.compiler.cudagraph_mark_step_begin()
        try:
            terms, grad = _evaluate(fn, args, failed, last)
        except Exception as exc:  # compilation failed (no compiler, unsupported op...): go on eager
            _fall_back_to_eager(exc, fn is _terms, note)
            terms_fn, update = _terms, (None if update is None else _adam_clamp)
            terms, grad = _evaluate(_terms, args, failed, last)
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
        if update is not None:  # Adam; compiled, the sanitising, the step and the clamp are one kernel
            try:
                opt.step(grad, failed, update)
            except Exception as exc:  # compiling the update failed
                _fall_back_to_eager(exc, update is _adam_clamp, note)
                terms_fn, update = _terms, _adam_clamp
                opt.t -= 1  # the failed call changed nothing
                opt.step(grad, failed, update)
            continue
        opt.step(_sanitise(grad, failed))  # L-BFGS
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
    final = {k: v.detach().float().cpu() for k, v in terms.items()}
    return to_host(x.detach().float()), initial, final, history, failed.cpu()


@contextlib.contextmanager
def _cudnn_benchmark(on: bool):
    """Set ``torch.backends.cudnn.benchmark`` for the duration (restored afterwards)."""
    old = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = old


def run_transfer(model, content: torch.Tensor, targets: dict[str, torch.Tensor], cfg: TransferConfig,
                 layer_weights: torch.Tensor | None = None, content_weights: torch.Tensor | None = None,
                 style_weights: torch.Tensor | None = None, noise_seeds: list[int] | None = None,
                 device: torch.device | None = None, log=None) -> TransferResult:
    """Optimise B images at once.

    Args:
        model: a :class:`~evostyle.features.VGGFeatures` with the style and content layers. With
            channels_last (the CUDA default) its weights are converted to that layout in place (same
            values; a copy per call would cost the engine, which reuses one model, memory and time).
        content: (3, H, W) content image in [0, 1]; shared by all rows.
        targets: {style layer: (B, ...)} per-row style statistics (see targets.StyleTargets.build).
        cfg: :class:`TransferConfig`.
        layer_weights: (B, L) per-row style-layer weights (default 1 for every layer).
        content_weights / style_weights: (B,) per-row multipliers of cfg's content / style weight.
        noise_seeds: B ints seeding each row's noise init (default 0..B-1).
        log: optional callable(str), called for each out-of-memory retry or compilation fallback.
    """
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
    chunk = min(b, int(cfg.max_batch) if cfg.max_batch else b)
    fit = rows_that_fit(tuple(content.shape[-2:]), cfg, device)
    if fit is not None and fit < chunk:  # on the CPU running out of memory kills the process: plan ahead
        note(f"{chunk} rows at once would not fit in the host's memory; running {fit} at a time")
        chunk = fit
    parts, start = [], 0
    with _cudnn_benchmark(device.type == "cuda" and bool(cfg.autotune)), prec.matmul_mode():
        with torch.no_grad(), prec.autocast(device):
            content_feat = model(content[None], (cfg.content_layer,))[cfg.content_layer].to(prec.dtype)
        while start < b:
            stop = min(b, start + chunk)
            sl = slice(start, stop)
            try:
                parts.append(_optimise_chunk(
                    model, content, content_feat, {l: t[sl] for l, t in targets.items()}, lw[sl], cw[sl],
                    sw[sl], cfg, prec, device, seeds[sl], note))
            except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
                if not is_oom(exc) or chunk == 1:
                    raise
                chunk = max(1, chunk // 2)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                note(f"out of memory at {stop - start} rows per chunk; retrying with {chunk}")
                continue
            start = stop
    images = torch.cat([p[0] for p in parts])
    initial = {k: torch.cat([p[1][k] for p in parts]) for k in parts[0][1]}
    final = {k: torch.cat([p[2][k] for p in parts]) for k in parts[0][2]}
    steps = [s for s, _ in parts[0][3]]
    history = torch.stack([torch.cat([p[3][i][1] for p in parts]) for i in range(len(steps))])
    failed = torch.cat([p[4] for p in parts])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return TransferResult(images, initial, final, history, steps, failed, time.perf_counter() - t0,
                          chunk, prec.name, messages)


if __name__ == "__main__":  # pragma: no cover - exercised through the CLI tests
    from .transfer_cli import main
    raise SystemExit(main())
