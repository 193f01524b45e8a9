"""The evaluator: a population of candidates in, fitness and named terms out.

It is the only way the search reaches the style-transfer engine, so it can later be sharded across
GPUs or machines. A candidate is one point of the :class:`~evostyle.space.Space`; it makes K outputs
that share its mixing, layer weights and ratio and differ in their rotation angle ``angle_<k>``.
All P*K outputs of a population are optimised in one batched transfer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .engine import StyleEngine
from .scoring import ScoreConfig, feature_diversity, fitness, pairwise_pixel, score_loss
from .space import Space


@dataclass
class Evaluation:
    """Scores of P candidates. ``terms`` maps CSV column names (``loss_*``, ``diversity_*``) to (P,)."""

    values: dict[str, torch.Tensor]
    terms: dict[str, torch.Tensor]
    fitness: torch.Tensor
    failed: torch.Tensor
    images: torch.Tensor
    seconds: float
    log: list[str] = field(default_factory=list)
    chunk_size: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    """Wall seconds of this evaluation's parts: ``targets`` (building the per-row style targets),
    ``transfer`` (the batched optimisation, images back on the CPU) and ``scoring``."""

    def row(self, i: int) -> dict:
        """Candidate i as a flat dict of floats (param_*, loss_*, diversity_*, fitness, failed)."""
        r = {f"param_{k}": float(v[i]) for k, v in self.values.items()}
        r.update({k: float(v[i]) for k, v in self.terms.items()})
        r["fitness"] = float(self.fitness[i])
        r["failed"] = bool(self.failed[i])
        return r


class Evaluator:
    """Scores populations of style-search candidates.

    Args:
        engine: a :class:`~evostyle.engine.StyleEngine` (images, network, targets, transfer settings).
        space: the parameter space; must contain ``angle_0 .. angle_{K-1}``.
        outputs: K, outputs per candidate.
        score: :class:`~evostyle.scoring.ScoreConfig`.
        noise_seed: output k of every candidate uses noise seed ``noise_seed * 1000 + k`` (only matters
            for ``init`` with noise), so the same-target baseline differs only by its noise.
    """

    def __init__(self, engine: StyleEngine, space: Space, outputs: int, score: ScoreConfig | None = None,
                 noise_seed: int = 0):
        self.engine, self.space, self.k = engine, space, int(outputs)
        self.score = (score or ScoreConfig()).validate()
        self.noise_seed = int(noise_seed)
        self.n_styles = len(engine.styles)
        self.layers = list(engine.cfg.style_layers)
        self._feature_model = None
        for k in range(self.k):
            space.get(f"angle_{k}")

    @property
    def columns(self) -> list[str]:
        """Candidate CSV columns, in order."""
        terms = ["content", "style", "tv", "total"] + [f"style_{l}" for l in self.layers]
        return (["generation", "candidate"] + [f"param_{n}" for n in self.space.names]
                + [f"loss_{t}" for t in terms] + ["loss_score", "diversity_pixel", "diversity_feature",
                                                  "fitness", "failed", "seconds"])

    def _mix(self, values: dict[str, torch.Tensor], p: int) -> torch.Tensor:
        if self.n_styles == 1:
            return torch.ones(p, 1)
        if self.n_styles == 2:
            m = values["mix"].float()
            return torch.stack([1 - m, m], 1)
        raw = torch.stack([values[f"mix_{i}"].float() for i in range(self.n_styles)], 1)
        zero = raw.sum(1, keepdim=True) <= 0
        return torch.where(zero, torch.ones_like(raw), raw)

    def rows(self, values: dict[str, torch.Tensor]):
        """Expand P candidates to B = P*K transfer rows (row p*K + k is output k of candidate p)."""
        p, k = next(iter(values.values())).shape[0], self.k
        rep = lambda t: t.repeat_interleave(k, dim=0)  # noqa: E731
        mix = rep(self._mix(values, p))
        angles = torch.stack([values[f"angle_{j}"] for j in range(k)], 1).reshape(-1)
        rot_w = rep(values["rotation_weight"].float())
        layer_w = rep(torch.stack([values[f"layer_{l}"].float() for l in self.layers], 1))
        style_w = rep(values["style_ratio"].float())
        seeds = [self.noise_seed * 1000 + j for _ in range(p) for j in range(k)]
        return mix, angles, rot_w, layer_w, style_w, seeds

    def evaluate_values(self, values: dict[str, torch.Tensor], compile: bool | None = None) -> Evaluation:
        """Score candidates given as parameter values {name: (P,)}; ``compile`` overrides the
        engine's ``cfg.compile`` for this evaluation (None: the config's setting)."""
        t0 = time.perf_counter()
        p = next(iter(values.values())).shape[0]
        mix, angles, rot_w, layer_w, style_w, seeds = self.rows(values)
        targets = self.engine.build_targets(mix, angles, rot_w)
        if self.engine.device.type == "cuda":  # so the targets' kernels are not counted as transfer
            torch.cuda.synchronize(self.engine.device)
        t1 = time.perf_counter()
        res = self.engine.optimise(targets, layer_w, None, style_w, seeds, compile=compile)
        t2 = time.perf_counter()
        images = res.images.view(p, self.k, *res.images.shape[1:])
        failed = res.failed.view(p, self.k).any(1)
        cfg = self.engine.cfg
        terms = {f"loss_{t}": v.double().view(p, self.k).mean(1) for t, v in res.final.items()}
        terms["loss_score"] = score_loss(res.final, self.layers, cfg.content_weight, cfg.style_weight, p, self.k)
        terms["diversity_pixel"] = pairwise_pixel(images)
        terms["diversity_feature"] = feature_diversity(self._features(), images, self.score.feature_layer)
        fit = fitness(terms["loss_score"], terms, failed, self.score)
        t3 = time.perf_counter()
        return Evaluation(values, terms, fit, failed, images, t3 - t0, res.log, res.chunk_size,
                          {"targets": t1 - t0, "transfer": t2 - t1, "scoring": t3 - t2})

    def _features(self):
        layer = self.score.feature_layer
        if layer in self.engine.model.layers:
            return self.engine.model
        if self._feature_model is None:
            from .features import VGGFeatures
            info = self.engine.model.weights_info
            spec = info["spec"] if info["used"] != "random" else "random"
            self._feature_model = VGGFeatures((layer,), weights=spec, seed=info.get("seed", 0)).to(self.engine.device)
        return self._feature_model

    def evaluate(self, unit: torch.Tensor) -> Evaluation:
        """Score a (P, D) population in the unit cube."""
        return self.evaluate_values(self.space.to_values(unit))

    def __call__(self, unit: torch.Tensor) -> torch.Tensor:
        """(P, D) unit-cube population -> (P,) fitness (the DE objective)."""
        return self.evaluate(unit).fitness

    def evaluate_point(self, values: dict[str, float], angles=None, compile: bool | None = None) -> Evaluation:
        """Score one candidate given as {name: value}, optionally with its K angles replaced."""
        v = {n: torch.tensor([float(x)], dtype=torch.float64) for n, x in values.items()}
        for j, a in enumerate(angles or []):
            v[f"angle_{j}"] = torch.tensor([float(a)], dtype=torch.float64)
        return self.evaluate_values(v, compile)

    def baseline(self, values: dict[str, float]) -> Evaluation:
        """Same-target baseline: candidate ``values`` with every output's angle set to ``angle_0``.

        Runs eager even when the search is compiled: its K rows are a batch shape of their own, and
        compiling that shape for one evaluation costs far more (about 25 s at 256 px on an H100)
        than it saves (well under a second); compiled and eager losses agree within 1%.
        """
        return self.evaluate_point(values, [values["angle_0"]] * self.k, compile=False)
