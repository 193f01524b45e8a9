"""A search's plan: what its config resolves to once the images, the network and the device are known.

:func:`make_plan` runs once, in :func:`~evostyle.search.run.build`; the plan is recorded in config.json
(``plan``) and handed to everything that needs a resolved setting, so no rule (the strategy ``auto``
means, whether ``compile = "auto"`` compiles, the hypervolume's reference point, the inner learning
rate) is applied twice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only
    import torch

    from evostyle.search.evaluator import Evaluator
    from evostyle.search.settings import SearchConfig
    from evostyle.transfer.engine import StyleEngine

COMPILE_AUTO_MIN_WORK = 100_000
"""``compile = "auto"`` compiles a search on CUDA from this many planned image-steps on, counted in
256 x 256 px images: (maxiter + 1) * population * outputs * steps * H * W / 256**2; compiling pays from
about there (docs/performance.md has the measurement)."""


@dataclass(frozen=True)
class Plan:
    """The resolved settings of one search (the record's ``plan``; see :meth:`to_dict`)."""

    optimizer: str
    init: str
    """How the initial population is drawn (``de.init``; every optimiser starts from it)."""
    strategy: str | None
    """The DE strategy the optimiser runs (``auto`` resolved); None for one without strategies."""
    compile: bool
    compile_why: str
    """Why (a sentence: the setting, or the planned work against :data:`COMPILE_AUTO_MIN_WORK`)."""
    compile_mode: str | None
    """torch.compile's mode when compiling (``auto`` resolved for the device), else None."""
    image_size: tuple[int, int]
    """The outputs' (height, width) in px."""
    objectives: tuple[str, str]
    """The hypervolume's objectives: (fidelity column, "-" + diversity column), both minimised."""
    reference: tuple[float, float]
    """The hypervolume's reference point in the objectives' terms: (fidelity, -diversity)."""
    reference_how: str
    backbone: str
    preprocessing: str
    lr: float
    """The inner optimiser's learning rate (``lr`` None in the config: that optimiser's own default)."""

    def to_dict(self) -> dict:
        """The plan as config.json records it (:func:`evostyle.rundir.record.plan_of` reads it back)."""
        return {"optimizer": self.optimizer, "init": self.init, "strategy": self.strategy,
                "compile": {"used": self.compile, "why": self.compile_why, "mode": self.compile_mode},
                "image_size": list(self.image_size),
                "hypervolume": {"objectives": list(self.objectives), "reference": list(self.reference),
                                "how": self.reference_how},
                "backbone": self.backbone, "preprocessing": self.preprocessing, "lr": self.lr}

    def as_recorded(self, recorded: dict) -> Plan:
        """This plan with what a resumed run must keep of its recorded plan (``recorded``, as
        :func:`evostyle.rundir.record.plan_of` reads it): the reference point its hypervolumes were
        measured against and the initial population it started from."""
        hv = recorded.get("hypervolume") or {}
        return dataclasses.replace(self, reference=tuple(float(v) for v in hv["reference"]),
                                   reference_how=str(hv.get("how", "recorded in the run's config.json")),
                                   init=str(recorded.get("init") or self.init))


def compile_choice(cfg: SearchConfig, device: torch.device, hw: tuple[int, int]) -> tuple[bool, str]:
    """Whether the search compiles its inner step, and why (a sentence for the record).

    ``device`` is the search's torch.device, ``hw`` the outputs' (height, width) in px.
    """
    c = cfg.transfer.compile
    if isinstance(c, bool):
        return c, f"compile = {str(c).lower()} in the config"
    if device.type != "cuda":
        return False, "auto: not on CUDA"
    work = ((cfg.de.maxiter + 1) * cfg.de.population * cfg.space.outputs * cfg.transfer.steps
            * hw[0] * hw[1] / 256**2)
    use = work >= COMPILE_AUTO_MIN_WORK
    return use, (f"auto: {work:,.0f} planned 256 px image-steps, {'at least' if use else 'under'} "
                 f"{COMPILE_AUTO_MIN_WORK:,}")


def make_plan(cfg: SearchConfig, engine: StyleEngine, evaluator: Evaluator) -> Plan:
    """Resolve ``cfg`` against its loaded engine (device, image size, network) and evaluator (the
    reference point's fidelity is the unstylised content image's, scored once here)."""
    from evostyle.search.optimizers import OPTIMIZERS
    from evostyle.transfer.compiling import resolve_compile_mode
    hw = tuple(int(v) for v in engine.content.shape[-2:])
    used, why = compile_choice(cfg, engine.device, hw)
    sc = evaluator.score
    if cfg.scoring.reference_point is None:
        reference = (evaluator.reference_fidelity(), 0.0)
        how = ("the unstylised content image's fidelity (the worst over the pure styles and the default mix), "
               "diversity 0")
    else:
        fidelity, diversity = cfg.scoring.reference_point
        reference, how = (float(fidelity), -float(diversity)), "reference_point in the config"
    info = engine.weights_info
    return Plan(optimizer=cfg.de.optimizer, init=cfg.de.init, strategy=OPTIMIZERS.get(cfg.de.optimizer)(cfg).strategy(),
                compile=used, compile_why=why,
                compile_mode=resolve_compile_mode(cfg.transfer.compile_mode, engine.device) if used else None,
                image_size=hw, objectives=(sc.fidelity_column, f"-{sc.diversity_column}"), reference=reference,
                reference_how=how, backbone=str(info.get("backbone", engine.cfg.network)),
                preprocessing=str(info.get("preprocessing", "")), lr=float(engine.cfg.resolved_lr))
