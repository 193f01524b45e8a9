"""One object that holds everything a style transfer needs: images, network, style targets, settings.

The transfer CLI and the search's evaluator both go through :class:`StyleEngine`, so they agree on
how images are loaded and sized and which layers are used.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from evostyle.errors import EvostyleError, flag
from evostyle.io.images import MAX_SIDE, image_size, load_image, resize
from evostyle.network.backbones import BACKBONES, Backbone
from evostyle.network.device import device_info, resolve_device
from evostyle.network.features import VGGFeatures
from evostyle.style.rotations import DEFAULT_ROTATION_MODE
from evostyle.style.targets import StyleTargets
from evostyle.transfer.config import TransferConfig
from evostyle.transfer.run import TransferResult, run_transfer
from evostyle.transfer.state import TransferState

if TYPE_CHECKING:  # annotations only
    import os
    from collections.abc import Callable, Sequence

    from evostyle.types import ArrayLike


def _check_depth(hw: tuple[int, int], layers, net: Backbone, what: str = "output size", fix: str | None = None,
                 aspect: float | None = None) -> None:
    """Each pooling halves the map; refuse images too small for the deepest layer, naming the size that
    would do, or, for an image so narrow (``aspect``: its long side over its short one, before any
    resize) that no size up to MAX_SIDE would, what to do instead."""
    deepest = net.deepest(layers)
    need = 2 ** net.pools_before(deepest)
    if min(hw) < need:
        aspect = aspect or max(hw) / min(hw)
        long_side = math.ceil(need * aspect)  # what the short side's need asks of the long one
        if long_side > MAX_SIDE:  # no size can help: say what can
            raise EvostyleError(f"{what} {hw[1]}x{hw[0]} px is too narrow for layer {deepest}: its short side needs "
                                f"{need} px, which would take a long side of {long_side} px (at most {MAX_SIDE}); "
                                f"crop the image nearer to square, or use shallower style layers")
        raise EvostyleError(f"{what} {hw[1]}x{hw[0]} px is too small for layer {deepest}: each side needs "
                            f"at least {need} px; raise {fix or flag('size')} to at least {long_side}")


def coarse_scales(scales: Sequence[int], size: int) -> tuple[int, ...]:
    """The coarser long sides of a coarse-to-fine ladder ending at ``size``: ``scales`` checked (whole
    numbers, strictly increasing, none above ``size``), with ``size`` itself dropped when it is last."""
    out = []
    for s in scales:
        if isinstance(s, bool) or int(s) != s or int(s) < 1:
            raise EvostyleError(f"scales must be whole numbers of px, got {s!r}")
        out.append(int(s))
    if out and out[-1] == size:
        out.pop()
    if any(b <= a for a, b in zip(out, out[1:])) or any(s >= size for s in out):
        ladder = [size // 4, size // 2, size]
        raise EvostyleError(f"scales {list(scales)} must rise strictly to the output size {size} px (e.g. "
                            f"{flag('scales', ' '.join(map(str, ladder)), python=ladder)}); lower them or raise "
                            f"{flag('size')}")
    return tuple(out)


def share_steps(steps: int, levels: int) -> list[int]:
    """Inner steps per scale of a ``levels``-scale ladder: equal shares of ``steps``, the remainder at
    the finest scale (the output's), each at least 1."""
    if steps < levels:
        raise EvostyleError(f"{steps} steps cannot be shared among {levels} scales: give at least one step each")
    return [steps // levels] * (levels - 1) + [steps - steps // levels * (levels - 1)]


def ladder_ends(steps: int, levels: int) -> list[int]:
    """The step count at which each scale of a ``levels``-scale ladder of ``steps`` ends, coarse to
    fine (the last is ``steps``): where a ladder can stop and be continued (a multi-fidelity search's
    budget levels over scales)."""
    return list(itertools.accumulate(share_steps(steps, levels)))


@dataclasses.dataclass(frozen=True)
class _Level:
    """One coarser scale of a coarse-to-fine engine: its content (3, h, w) and its targets' builder."""

    content: torch.Tensor
    targets: StyleTargets


class StyleEngine:
    """Content + S style images + VGG network + targets builder.

    Args:
        content: path or (3, H, W) tensor; resized so its long side is ``size`` px.
        styles: paths or tensors; each resized to exactly the content's (H, W) (needed by the spatially
            aware measures and by spatial rotation; for Gram targets it only fixes the scale).
        cfg: :class:`~evostyle.transfer.TransferConfig`, checked here once (the runs do not check it
            again); :attr:`cfg` holds it resolved: the backbone the weights resolved to and the
            learning rate (``lr`` None: the optimiser's own).
        size: long side of the output in px.
        rotation_mode / shuffle: see :mod:`evostyle.style.rotations` and :mod:`evostyle.style.targets`.
        weights / seed / pool: see :class:`~evostyle.network.features.VGGFeatures` (``cfg.backbone``
            is its backbone, updated to the one the weights resolved to); ``seed`` also seeds the
            channel-rotation bases.
        device: ``auto`` | ``cpu`` | ``cuda[:N]`` or a torch.device.
        scales: coarser long sides (px) to optimise at first, coarse to fine (neural-style's multires
            recipe): each scale's result, upsampled, starts the next, and ``size`` is the last; the steps
            are shared out among the scales (:func:`share_steps`), so a ladder costs the steps of one
            transfer, the coarse ones at a fraction of a full step's time. Empty (the default) or
            ``(size,)``: one scale, today's transfer.
    """

    def __init__(
        self,
        content: str | os.PathLike | torch.Tensor,
        styles: Sequence,
        cfg: TransferConfig,
        size: int = 256,
        rotation_mode: str = DEFAULT_ROTATION_MODE,
        shuffle: str = "none",
        weights: str = "auto",
        seed: int = 0,
        pool: str = "max",
        device: torch.device | str = "auto",
        model: VGGFeatures | None = None,
        scales: Sequence[int] = (),
    ):
        cfg = dataclasses.replace(cfg.validate(), lr=cfg.resolved_lr)
        self.cfg = cfg
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.content = self._load(content, size)
        hw = tuple(self.content.shape[-2:])
        src = content.shape[-2:] if isinstance(content, torch.Tensor) else image_size(content)
        _check_depth(hw, list(cfg.style_layers) + [cfg.content_layer], BACKBONES.get(cfg.network),
                     aspect=max(src) / min(src))
        self.styles = [self._load(s, hw) for s in styles]
        layers = list(dict.fromkeys(list(cfg.style_layers) + [cfg.content_layer]))
        self.model = (model or VGGFeatures(layers, weights=weights, seed=seed, pool=pool,
                                           backbone=cfg.backbone)).to(self.device)
        used = getattr(self.model, "backbone", None)
        if used is not None and used.name != cfg.backbone:  # auto resolved, or auto weights changed it
            self.cfg = cfg = dataclasses.replace(cfg, backbone=used.name)
        self.targets = StyleTargets(self.model, self.styles, cfg.style_layers, cfg.measure, rotation_mode,
                                    shuffle, seed, self.device)
        self.rotation_mode, self.shuffle, self.seed = rotation_mode, shuffle, seed
        self.scales = coarse_scales(scales, size)
        share_steps(int(cfg.steps), len(self.scales) + 1)  # each scale gets a step
        self.levels = [self._level(content, styles, s) for s in self.scales]
        # rows per chunk that fit in memory, learned from an out-of-memory retry; later runs start there
        self.chunk_cap: int | None = None
        self._content_feat: dict[tuple[int, int], torch.Tensor] = {}  # by (h, w): the output's and each scale's

    def _level(self, content, styles, size: int) -> _Level:
        """The content and the style targets at a coarser long side ``size``, on the engine's network."""
        c = self._load(content, size)
        hw = tuple(c.shape[-2:])
        _check_depth(hw, list(self.cfg.style_layers) + [self.cfg.content_layer], BACKBONES.get(self.cfg.network),
                     what=f"scale {size} px:", fix=f"the smallest of {flag('scales')}")
        targets = StyleTargets(self.model, [self._load(s, hw) for s in styles], self.cfg.style_layers,
                               self.cfg.measure, self.rotation_mode, self.shuffle, self.seed, self.device)
        return _Level(c, targets)

    @staticmethod
    def _load(img, size):
        if isinstance(img, (str, Path)):
            return load_image(img, size)
        return resize(img.float(), size)

    @property
    def content_features(self) -> torch.Tensor:
        """(1, C, h, w) float32 features of the content image at the content layer (computed once),
        what outputs are scored against (the transfer computes its own, in its precision)."""
        return self.references(tuple(self.content.shape[-2:]))[0]

    @property
    def ladder(self) -> list[int]:
        """The long sides (px) the transfer runs at, coarse to fine: the scales, then the output's."""
        return [*self.scales, max(self.content.shape[-2:])]

    @property
    def ends(self) -> list[int]:
        """The step count at which each scale of :attr:`ladder` ends (:func:`ladder_ends`)."""
        return ladder_ends(int(self.cfg.steps), len(self.ladder))

    def scale_after(self, steps: int) -> int:
        """The long side (px) a ladder stopped after ``steps`` steps stands at (``steps`` a scale's end)."""
        if steps not in self.ends:
            raise ValueError(f"{steps} steps is not where a scale ends ({self.ends})")
        return self.ladder[self.ends.index(steps)]

    def references(self, hw: tuple[int, int]) -> tuple[torch.Tensor, StyleTargets]:
        """What outputs of size ``hw`` (h, w) are scored against: the content features (as
        :attr:`content_features`) and the style targets at the output's size, or at the coarser scale of
        that size (a multi-fidelity search scores a ladder stopped early at its own scale)."""
        hw = tuple(int(x) for x in hw)
        scales = [(self.content, self.targets), *((lv.content, lv.targets) for lv in self.levels)]
        match = [(c, t) for c, t in scales if tuple(c.shape[-2:]) == hw]
        if not match:
            raise ValueError(f"no scale of this engine is {hw[1]}x{hw[0]} px "
                             f"({', '.join(f'{c.shape[-1]}x{c.shape[-2]}' for c, _ in scales)})")
        content, targets = match[0]
        if hw not in self._content_feat:
            with torch.no_grad():
                x = content[None].to(self.device, torch.float32)
                self._content_feat[hw] = self.model(x, (self.cfg.content_layer,))[self.cfg.content_layer].float()
        return self._content_feat[hw], targets

    @property
    def weights_info(self) -> dict:
        return self.model.weights_info

    def device_info(self) -> dict:
        return device_info(self.device)

    def run(
        self,
        mix: ArrayLike,
        angles: ArrayLike,
        rotation_weight: ArrayLike,
        layer_weights: torch.Tensor | None = None,
        content_weights: torch.Tensor | None = None,
        style_weights: torch.Tensor | None = None,
        noise_seeds: Sequence[int] | None = None,
        log: Callable[[str], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
        init_images: torch.Tensor | None = None,
        snapshot: tuple[int, Callable[[int, int, torch.Tensor], None]] | None = None,
    ) -> TransferResult:
        """Build per-row targets and optimise B rows: :meth:`build_targets` then :meth:`optimise`.
        Shapes as in ``StyleTargets.build``."""
        return self.optimise(self.build_targets(mix, angles, rotation_weight), layer_weights, content_weights,
                             style_weights, noise_seeds, log, progress=progress,
                             coarse_targets=self.build_coarse_targets(mix, angles, rotation_weight),
                             init_images=init_images, snapshot=snapshot)

    def build_targets(self, mix: ArrayLike, angles: ArrayLike, rotation_weight: ArrayLike) -> dict[str, torch.Tensor]:
        """Per-row style targets {layer: (B, ...)} on the device; see ``StyleTargets.build``."""
        return self.targets.build(mix, angles, rotation_weight)

    def build_coarse_targets(self, mix: ArrayLike, angles: ArrayLike,
                             rotation_weight: ArrayLike) -> list[dict[str, torch.Tensor]]:
        """The same rows' targets at each coarser scale, coarse to fine ([] for one scale)."""
        return [level.targets.build(mix, angles, rotation_weight) for level in self.levels]

    def optimise(
        self,
        targets: dict[str, torch.Tensor],
        layer_weights: torch.Tensor | None = None,
        content_weights: torch.Tensor | None = None,
        style_weights: torch.Tensor | None = None,
        noise_seeds: Sequence[int] | None = None,
        log: Callable[[str], None] | None = None,
        compile: bool | None = None,
        progress: Callable[[int, int], None] | None = None,
        init_noise: torch.Tensor | None = None,
        content_perturbation: torch.Tensor | None = None,
        diversity_weights: torch.Tensor | None = None,
        group: int = 1,
        start: TransferState | None = None,
        keep_state: bool = False,
        steps: int | None = None,
        coarse_targets: Sequence[dict[str, torch.Tensor]] = (),
        init_images: torch.Tensor | None = None,
        snapshot: tuple[int, Callable[[int, int, torch.Tensor], None]] | None = None,
    ) -> TransferResult:
        """Optimise B rows towards ``targets`` (from :meth:`build_targets`).

        ``compile`` overrides ``cfg.compile`` for this run (None: the config's setting); ``progress``,
        ``init_noise`` (per-row noise amplitudes of the start), ``content_perturbation`` (per-row
        strengths of the content target's perturbation), ``diversity_weights`` / ``group`` (an inner
        diversity reward among each group of rows) and ``start`` / ``keep_state`` (rows continued from
        where an earlier run left them) are :func:`~evostyle.transfer.run_transfer`'s; ``steps``
        overrides ``cfg.steps`` (the steps of this run, more steps for a continued one).
        ``coarse_targets`` (:meth:`build_coarse_targets`) are needed when the engine has ``scales``:
        the rows then run coarse to fine, each scale's images upsampled (bilinear) to start the next
        one with a fresh inner optimiser; ``init_noise`` shapes the coarsest start only. The result's
        ``initial`` terms are the first scale's start, ``final`` and ``history`` the whole run's
        (history steps counted across the scales it ran, from its start). On a ladder ``steps`` and
        ``start`` select a span of its scales (a multi-fidelity search over scales): from where
        ``start`` stopped (the beginning if None) for ``steps`` steps (None: to the end), both at
        scale ends (:attr:`ends`); a ``steps`` that stops early needs ``start`` or ``keep_state``, so
        that it is not taken for a shorter ladder. The images come out at the last scale run, and
        ``keep_state`` keeps only them (float32), since the next scale starts a fresh inner optimiser:
        a ladder stopped and continued is exactly the uninterrupted ladder. ``init_images`` (B, 3, H,
        W) in [0, 1]: the rows' start images (neural-style's ``-init_image``), resized to the first
        scale. ``snapshot``: (every, fn): fn(step, first_row, images) after every ``every``-th step
        before the ladder's last, steps counted from the ladder's start (a coarser scale's images at
        its own size).

        If a run had to split its batch after running out of memory, the chunk size that worked is
        kept, so the next generations do not run out of memory first again.
        """
        cfg = self.cfg if compile is None else dataclasses.replace(self.cfg, compile=bool(compile))
        if self.chunk_cap is not None and (cfg.max_batch is None or cfg.max_batch > self.chunk_cap):
            cfg = dataclasses.replace(cfg, max_batch=self.chunk_cap)
        rows = next(iter(targets.values())).shape[0]
        if len(coarse_targets) != len(self.levels):
            raise ValueError(f"{len(coarse_targets)} coarse targets for an engine of {len(self.levels)} coarser scales")
        ladder = [*zip((lv.content for lv in self.levels), coarse_targets), (self.content, targets)]
        if self.levels:  # a span of the ladder's scales; the inner runs neither continue nor keep a state
            if steps not in (None, self.cfg.steps) and start is None and not keep_state:
                raise ValueError(f"on a coarse-to-fine engine steps={steps} stops the ladder early, at a coarser "
                                 "scale: pass keep_state=True (or start=) to mean it, or build the engine with "
                                 "the steps wanted")
            first, shares, done = self._span(steps, start)
            ladder = ladder[first:first + len(shares)]
            if start is not None and init_images is not None:  # run_transfer's rule, which no start reaches here
                raise ValueError("a transfer starts from init_images or continues from a start state, not both")
            init = init_images if start is None else start.images.float()
            run_start, run_keep = None, False
        else:
            if steps is not None:
                cfg = dataclasses.replace(cfg, steps=int(steps))
            shares, done, init, run_start, run_keep = [int(cfg.steps)], 0, init_images, start, keep_state
        parts = []
        for (content, level_targets), n in zip(ladder, shares):
            if init is not None and tuple(init.shape[-2:]) != tuple(content.shape[-2:]):
                # a coarser result (or a given start image) brought to this scale is where it starts
                init = F.interpolate(init.float(), size=tuple(content.shape[-2:]), mode="bilinear",
                                     align_corners=False).clamp(0, 1)
            parts.append(run_transfer(
                self.model, content, level_targets, dataclasses.replace(cfg, steps=n), layer_weights,
                content_weights, style_weights, noise_seeds, self.device, log, progress,
                init_noise=init_noise if init is None else None, content_perturbation=content_perturbation,
                diversity_weights=diversity_weights, group=group, start=run_start, keep_state=run_keep,
                init_images=init, check=False,
                snapshot=None if snapshot is None else
                (range(-done % snapshot[0] or snapshot[0], n, snapshot[0]),
                 lambda step, lo, x, done=done: snapshot[1](done + step, lo, x))))
            init, done = parts[-1].images, done + n
            if snapshot is not None and done % snapshot[0] == 0 and done < cfg.steps:  # a coarser scale's end
                snapshot[1](done, 0, init)
        res = parts[0] if len(parts) == 1 else _ladder_result(parts)
        if self.levels and start is not None:
            res.failed |= start.failed  # a failed row stays failed
        if self.levels and keep_state:
            res.state = TransferState(res.images.clone(), torch.full((rows,), done, dtype=torch.long),
                                      res.failed.clone(), cfg.optimizer, {})
        if res.chunk_size < min(rows, cfg.max_batch or rows):
            self.chunk_cap = res.chunk_size
        return res

    def _span(self, steps: int | None, start: TransferState | None) -> tuple[int, list[int], int]:
        """(first scale, steps at each scale run, steps already done) of a ladder run from where
        ``start`` stopped for ``steps`` steps (see :meth:`optimise`)."""
        ends = self.ends
        done = 0
        if start is not None:
            done = int(start.steps[0])
            if not (start.steps == done).all():
                raise ValueError("rows continued together must have taken the same number of steps")
        stop = ends[-1] if steps is None else done + int(steps)
        if (done and done not in ends) or stop not in ends or stop <= done:
            raise ValueError(f"a coarse-to-fine transfer stops and continues only where a scale ends (after "
                             f"{ends} steps): {done} to {stop} steps is not a span of its scales")
        first, last = (ends.index(done) + 1 if done else 0), ends.index(stop)
        bounds = [0, *ends]
        return first, [bounds[i + 1] - bounds[i] for i in range(first, last + 1)], done


def _ladder_result(parts: Sequence[TransferResult]) -> TransferResult:
    """One coarse-to-fine transfer's result from its scales' results, coarse to fine."""
    steps, offset = [], 0
    for p in parts:
        steps += [offset + s for s in p.history_steps]
        offset += p.history_steps[-1]
    failed = parts[0].failed.clone()
    for p in parts[1:]:
        failed |= p.failed
    return TransferResult(
        images=parts[-1].images, initial=parts[0].initial, final=parts[-1].final,
        history=torch.cat([p.history for p in parts]), history_steps=steps, failed=failed,
        seconds=sum(p.seconds for p in parts), chunk_size=min(p.chunk_size for p in parts),
        precision=parts[-1].precision, log=[m for p in parts for m in p.log])
