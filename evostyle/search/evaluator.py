"""The evaluator: a population of candidates in, fitness and named terms out.

It is the only way the search reaches the style-transfer engine, so it can later be sharded across
GPUs or machines. A candidate is one point of the :class:`~evostyle.search.space.Space`; it makes K outputs
that share its mixing, layer weights and ratio and differ in their rotation angle ``angle_<k>``.
All P*K outputs of a population are optimised in one batched transfer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import torch

from evostyle.network.device import resolve_precision
from evostyle.progress import Hooks
from evostyle.rundir.files import FIDELITY_COLUMNS, SCALE_COLUMN, SECONDS_COLUMN
from evostyle.search.scoring import (
    DIVERSITY_METRICS,
    ScoreConfig,
    features_at,
    fidelity_terms,
    fitness,
    objectives,
    output_terms,
    score_loss,
)
from evostyle.search.space import Space
from evostyle.seeding import derived_seed
from evostyle.transfer.engine import StyleEngine

if TYPE_CHECKING:  # annotations only
    from collections.abc import Sequence

    from evostyle.transfer.state import TransferState
    from evostyle.types import ArrayLike


@dataclass
class Evaluation:
    """Scores of P candidates. ``terms`` maps CSV column names (``loss_*``, ``fidelity*``,
    ``diversity_*``) to (P,); ``objectives`` (P, 2) are the Pareto objectives (fidelity, -diversity)."""

    values: dict[str, torch.Tensor]
    terms: dict[str, torch.Tensor]
    fitness: torch.Tensor
    objectives: torch.Tensor
    failed: torch.Tensor
    images: torch.Tensor
    seconds: float
    log: list[str] = field(default_factory=list)
    chunk_size: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    """Wall seconds of this evaluation's parts: ``targets`` (building the per-row style targets),
    ``transfer`` (the batched optimisation, images back on the CPU) and ``scoring``; a distributed
    executor adds ``dispatch`` (its own time beyond the slowest worker's)."""
    events: list[dict] = field(default_factory=list)
    """What happened to the workers during this evaluation (a worker lost and its candidates rerun):
    JSON-able dicts the run keeps in state.json."""
    state: TransferState | None = None
    """Where the P*K transfer rows stand (``evaluate_here(..., keep_state=True)``), to continue them."""

    @classmethod
    def concat(cls, parts: list[Evaluation], seconds: float) -> Evaluation:
        """The evaluation of the candidates of ``parts`` (each a contiguous slice of one population, in
        order) as one; ``seconds`` is the wall time of the whole. Phases are the slowest part's."""
        parts = [e for e in parts if e.fitness.shape[0]]
        cat = lambda get: torch.cat([get(e) for e in parts])
        phases = {k: max(e.phases.get(k, 0.0) for e in parts) for k in parts[0].phases}
        phases["dispatch"] = max(0.0, seconds - max(e.seconds for e in parts))
        states = [e.state for e in parts]
        state = None if any(s is None for s in states) else type(states[0]).cat(states)
        return cls({n: cat(lambda e, n=n: e.values[n]) for n in parts[0].values},
                   {n: cat(lambda e, n=n: e.terms[n]) for n in parts[0].terms}, cat(lambda e: e.fitness),
                   cat(lambda e: e.objectives), cat(lambda e: e.failed), cat(lambda e: e.images), seconds,
                   [m for e in parts for m in e.log], min(e.chunk_size for e in parts), phases,
                   [v for e in parts for v in e.events], state)

    def row(self, i: int) -> dict:
        """Candidate i as a flat dict of floats (param_*, loss_*, diversity_*, fitness, failed)."""
        r = {f"param_{k}": float(v[i]) for k, v in self.values.items()}
        r.update({k: float(v[i]) for k, v in self.terms.items()})
        r["fitness"] = float(self.fitness[i])
        r["failed"] = bool(self.failed[i])
        return r


class Fidelity(NamedTuple):
    """How far one evaluation's transfers go, for a multi-fidelity optimiser (default: the config's
    whole transfer from each row's start image)."""

    steps: int | None = None
    """Transfer steps this evaluation runs (None: the config's ``steps``)."""
    start: TransferState | None = None
    """Where the P*K rows stand (an earlier evaluation's ``state``): they continue for ``steps`` more."""
    keep_state: bool = False
    """Return where the rows stand afterwards (``Evaluation.state``)."""

    def candidates(self, lo: int, hi: int, k: int) -> Fidelity:
        """The same fidelity for candidates [lo, hi) of K outputs each (their rows of ``start``)."""
        return self._replace(start=None if self.start is None else self.start.rows(slice(lo * k, hi * k)))


class Rows(NamedTuple):
    """A population as B = P*K transfer rows (row p*K + k is output k of candidate p)."""

    mix: torch.Tensor
    """(B, S) style mixing weights."""
    angles: torch.Tensor
    """(B,) rotation angles in degrees."""
    rotation_weight: torch.Tensor
    """(B,) fraction of each target rotated."""
    layer_weights: torch.Tensor
    """(B, L) per style layer weights."""
    style_weights: torch.Tensor
    """(B,) multipliers of the style weight."""
    seeds: list[int]
    """B noise seeds: output k of a candidate whose run seed is s has noise seed ``derived_seed(s, k)``
    (:mod:`evostyle.seeding`: ``s * 1000 + k``)."""
    init_noise: torch.Tensor | None
    """(B,) noise amplitude of each output's start (search group ``noise``), None where not searched."""
    content_perturbation: torch.Tensor | None
    """(B,) strength of each output's content-target perturbation (group ``perturb``), or None."""
    diversity_weights: torch.Tensor | None
    """(B,) weight of the inner diversity reward among a candidate's K outputs (group
    ``diversity_loss``), or None."""


class Evaluator:
    """Scores populations of style-search candidates.

    Args:
        engine: a :class:`~evostyle.transfer.engine.StyleEngine` (images, network, targets, transfer settings).
        space: the parameter space; must contain ``angle_0 .. angle_{K-1}``.
        outputs: K, outputs per candidate.
        score: :class:`~evostyle.search.scoring.ScoreConfig`.
        noise_seed: output k of every candidate uses noise seed ``derived_seed(noise_seed, k)`` (only matters
            for ``init`` with noise), so the same-target baseline differs only by its noise.
        hooks: the search's :class:`~evostyle.progress.Hooks`; the evaluator calls ``on_step`` after
            every transfer step and ``on_phase`` when the scoring begins.
        multi_fidelity: its rows carry the ``steps`` and ``steps_run`` columns, and ``scale`` with a
            coarse-to-fine engine (a multi-fidelity optimiser's search).
    """

    def __init__(self, engine: StyleEngine, space: Space, outputs: int, score: ScoreConfig | None = None,
                 noise_seed: int = 0, hooks: Hooks | None = None, multi_fidelity: bool = False):
        self.engine, self.space, self.k = engine, space, int(outputs)
        self.score = (score or ScoreConfig()).validate()
        self.noise_seed = int(noise_seed)
        self.multi_fidelity = bool(multi_fidelity)
        self.n_styles = len(engine.styles)
        self.layers = list(engine.cfg.style_layers)
        self._extra_models: dict = {}
        self.executor = None
        """Where :meth:`evaluate_values` runs (:mod:`evostyle.search.executors`); None: here."""
        self.hooks = hooks if hooks is not None else Hooks()
        for k in range(self.k):
            space.get(f"angle_{k}")

    @property
    def columns(self) -> list[str]:
        """Candidate CSV columns, in order."""
        terms = ["content", "style", "tv", "total"] + [f"style_{l}" for l in self.layers]
        if "diversity_loss_weight" in self.space.by_name:  # the inner reward's term, only where it is used
            terms.append("diversity")
        fidelity = [*FIDELITY_COLUMNS, *([SCALE_COLUMN] if self.engine.levels else [])] if self.multi_fidelity else []
        return (["generation", "candidate"] + fidelity + [f"param_{n}" for n in self.space.names]
                + [f"loss_{t}" for t in terms] + ["loss_score", "fidelity_style", "fidelity_content", "fidelity"]
                + [f"diversity_{n}" for n in DIVERSITY_METRICS] + ["fitness", "failed", SECONDS_COLUMN])

    def _mix(self, values: dict[str, torch.Tensor], p: int) -> torch.Tensor:
        if self.n_styles == 1:
            return torch.ones(p, 1)
        if self.n_styles == 2:
            m = values["mix"].float()
            return torch.stack([1 - m, m], 1)
        raw = torch.stack([values[f"mix_{i}"].float() for i in range(self.n_styles)], 1)
        zero = raw.sum(1, keepdim=True) <= 0
        return torch.where(zero, torch.ones_like(raw), raw)

    def rows(self, values: dict[str, torch.Tensor], noise_seeds: Sequence[int] | None = None) -> Rows:
        """Expand P candidates to B = P*K transfer :class:`Rows` (row p*K + k is output k of candidate p);
        ``noise_seeds`` (P,) gives each candidate a run seed of its own (default: :attr:`noise_seed`)."""
        p, k = next(iter(values.values())).shape[0], self.k
        rep = lambda t: t.repeat_interleave(k, dim=0)
        mix = rep(self._mix(values, p))
        angles = torch.stack([values[f"angle_{j}"] for j in range(k)], 1).reshape(-1)
        rot_w = rep(values["rotation_weight"].float())
        layer_w = rep(torch.stack([values[f"layer_{l}"].float() for l in self.layers], 1))
        style_w = rep(values["style_ratio"].float())
        own = [self.noise_seed] * p if noise_seeds is None else [int(x) for x in noise_seeds]
        if len(own) != p:
            raise ValueError(f"{len(own)} noise seeds for {p} candidates")
        seeds = [derived_seed(s, j) for s in own for j in range(k)]
        noise = rep(values["noise_sigma"].float()) if "noise_sigma" in values else None
        perturb = rep(values["perturb_strength"].float()) if "perturb_strength" in values else None
        div = rep(values["diversity_loss_weight"].float()) if "diversity_loss_weight" in values else None
        return Rows(mix, angles, rot_w, layer_w, style_w, seeds, noise, perturb, div)

    def evaluate_values(self, values: dict[str, torch.Tensor], compile: bool | None = None,
                        fidelity: Fidelity | None = None) -> Evaluation:
        """Score candidates given as parameter values {name: (P,)}, on the :attr:`executor`;
        ``compile`` overrides the engine's ``cfg.compile`` for this evaluation (None: the config's
        setting); ``fidelity`` a shorter or continued transfer (:class:`Fidelity`)."""
        if self.executor is not None:  # an executor written before fidelities takes two arguments
            args = (values, compile) if fidelity is None else (values, compile, fidelity)
            return self.executor.evaluate(*args)
        return self.evaluate_here(values, compile, fidelity=fidelity)

    def evaluate_here(self, values: dict[str, torch.Tensor], compile: bool | None = None,
                      noise_seeds: Sequence[int] | None = None, fidelity: Fidelity | None = None) -> Evaluation:
        """:meth:`evaluate_values` in this process, on the engine's device (what every executor's
        workers run); ``noise_seeds`` as in :meth:`rows`."""
        fid = fidelity or Fidelity()
        t0 = time.perf_counter()
        p = next(iter(values.values())).shape[0]
        rows = self.rows(values, noise_seeds)
        mix = rows.mix
        targets = self.engine.build_targets(rows.mix, rows.angles, rows.rotation_weight)
        coarse = self.engine.build_coarse_targets(rows.mix, rows.angles, rows.rotation_weight)
        if self.engine.device.type == "cuda":  # so the targets' kernels are not counted as transfer
            torch.cuda.synchronize(self.engine.device)
        t1 = time.perf_counter()
        res = self.engine.optimise(targets, rows.layer_weights, None, rows.style_weights, rows.seeds, compile=compile,
                                   progress=self.hooks.step if self.hooks.on_step else None,
                                   init_noise=rows.init_noise, content_perturbation=rows.content_perturbation,
                                   diversity_weights=rows.diversity_weights, group=self.k, start=fid.start,
                                   keep_state=fid.keep_state, steps=fid.steps, coarse_targets=coarse)
        t2 = time.perf_counter()
        self.hooks.phase("scoring the outputs (fidelity, diversity)")
        images = res.images.view(p, self.k, *res.images.shape[1:])
        failed = res.failed.view(p, self.k).any(1)
        cfg = self.engine.cfg
        terms = {f"loss_{t}": v.double().view(p, self.k).mean(1) for t, v in res.final.items()}
        terms["loss_score"] = score_loss(res.final, self.layers, cfg.content_weight, cfg.style_weight, p, self.k)
        terms.update(self.score_images(images, mix))
        fit = fitness(terms, failed, self.score)
        t3 = time.perf_counter()
        return Evaluation(values, terms, fit, objectives(terms, failed, self.score), failed, images, t3 - t0,
                          res.log, res.chunk_size, {"targets": t1 - t0, "transfer": t2 - t1, "scoring": t3 - t2},
                          state=res.state)

    def score_images(self, images: torch.Tensor, mix: torch.Tensor, diversity: bool = True) -> dict[str, torch.Tensor]:
        """Fidelity and diversity of (P, K, 3, H, W) outputs whose P*K rows have mixing weights ``mix``
        (P*K, S), against the content and the style targets at their size (a coarser scale's outputs
        against that scale's): {``fidelity_style``, ``fidelity_content``, ``fidelity`` and ``diversity_<name>`` for
        every registered diversity metric: (P,)} (see :mod:`evostyle.search.scoring`). One forward pass
        of the outputs, in the transfer's precision, gives the fidelity terms and the features the
        metrics need (a layer the engine's network does not reach gets a network of its own).
        ``diversity`` False: fidelity only."""
        p, k = images.shape[:2]
        eng, cfg = self.engine, self.engine.cfg
        metrics = list(DIVERSITY_METRICS.items()) if diversity else []
        layers = {m.layer for _, m in metrics if m.layer is not None}
        shared = tuple(sorted(l for l in layers if l in eng.model.reach))
        prec = resolve_precision(cfg.precision, eng.device, cfg.channels_last)
        content, targets = eng.references(images.shape[-2:])  # a ladder stopped early: its scale's own
        per_output, kept = output_terms(eng.model, images.flatten(0, 1), content, targets.unrotated(mix),
                                        self.layers, cfg.content_layer, cfg.measure, cfg.normalize, keep=shared,
                                        precision=prec)
        out = fidelity_terms(per_output, self.layers, cfg.content_weight, cfg.style_weight, p, k)
        for name, metric in metrics:
            feats = None
            if metric.layer is not None:
                feats = kept[metric.layer] if metric.layer in kept else self._deep_features(images, metric.layer)
                feats = feats.view(p, k, *feats.shape[1:])
            out[f"diversity_{name}"] = torch.as_tensor(metric.compute(images, feats), dtype=torch.float64).cpu()
        return out

    def _deep_features(self, images: torch.Tensor, layer: str) -> torch.Tensor:
        """(P*K, C, h, w) features at a layer deeper than the engine's network (whose own network is
        built once, with the same weights)."""
        if layer not in self._extra_models:
            self._extra_models[layer] = self.engine.model.with_layers((layer,)).to(self.engine.device)
        return features_at(self._extra_models[layer], images.flatten(0, 1), layer)

    def reference_fidelity(self) -> float:
        """The fidelity (``fidelity``, lower is better) of the unstylised content image itself: the
        worst over each pure style's unrotated target and the space's default mix. The hypervolume's
        reference point (fidelity, diversity 0) says "no better than the photo, with no diversity"."""
        n = self.n_styles
        defaults = {name: torch.tensor([float(p.value if p.value is not None else (p.low + p.high) / 2)],
                                       dtype=torch.float64) for name, p in self.space.by_name.items()}
        mix = torch.cat([torch.eye(n), self._mix(defaults, 1)]) if n > 1 else torch.ones(1, 1)
        images = self.engine.content[None, None].expand(mix.shape[0], 1, -1, -1, -1)
        return float(self.score_images(images, mix, diversity=False)["fidelity"].max())

    def evaluate(self, unit: torch.Tensor, fidelity: Fidelity | None = None) -> Evaluation:
        """Score a (P, D) population in the unit cube (at ``fidelity``, default the whole transfer)."""
        return self.evaluate_values(self.space.to_values(unit), fidelity=fidelity)

    def __call__(self, unit: torch.Tensor) -> torch.Tensor:
        """(P, D) unit-cube population -> (P,) fitness (the DE objective)."""
        return self.evaluate(unit).fitness

    def evaluate_point(
        self, values: dict[str, float], angles: ArrayLike = None, compile: bool | None = None
    ) -> Evaluation:
        """Score one candidate given as {name: value}, optionally with its K angles replaced."""
        v = {n: torch.tensor([float(x)], dtype=torch.float64) for n, x in values.items()}
        for j, a in enumerate(angles or []):
            v[f"angle_{j}"] = torch.tensor([float(a)], dtype=torch.float64)
        return self.evaluate_values(v, compile)

    def baseline(self, values: dict[str, float]) -> Evaluation:
        """Same-target baseline: candidate ``values`` with every output's angle set to ``angle_0``.

        Runs eager even when the search is compiled: its K rows are a batch shape of their own, and
        compiling that shape for one evaluation costs far more (tens of seconds) than it saves (well
        under a second); compiled and eager losses agree within 1%.
        """
        return self.evaluate_point(values, [values["angle_0"]] * self.k, compile=False)
