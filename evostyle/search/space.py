"""Named search parameters with bounds, linear or log scale, searched or fixed.

The DE works in the unit cube [0, 1]^D of the searched parameters; :meth:`Space.to_values` and
:meth:`Space.to_unit` are the only places bounds are applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from evostyle.errors import EvostyleError, flag, unknown
from evostyle.style.rotations import DEFAULT_ROTATION_MODE

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable, Sequence


def bounds_flag(name: str) -> str:
    """How to set the bounds of parameter or group ``name``, spelled for the reader (:func:`flag`)."""
    return flag("bounds", f"{name}=LOW,HIGH", python={name: ["LOW", "HIGH"]})


@dataclass
class Param:
    """One parameter. ``value`` set means fixed (not searched). ``step`` quantises values (e.g. 90)."""

    name: str
    low: float
    high: float
    scale: str = "linear"
    value: float | None = None
    step: float | None = None
    group: str = ""
    unit: str = ""
    domain: tuple[float, float] = (-math.inf, math.inf)
    """Where the parameter means something (a fraction: [0, 1]); bounds and fixed values stay inside."""

    def check(self) -> Param:
        if self.scale not in ("linear", "log"):
            raise EvostyleError(f"parameter {self.name}: unknown scale {self.scale!r}; valid: linear, log")
        lo, hi = float(self.low), float(self.high)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise EvostyleError(f"parameter {self.name}: bounds must be finite, got [{lo}, {hi}]")
        if lo >= hi:
            raise EvostyleError(f"parameter {self.name}: low >= high ({lo:g} >= {hi:g}); need low < high")
        if self.scale == "log" and lo <= 0:
            raise EvostyleError(f"parameter {self.name}: log-scale bounds must be > 0, got [{lo:g}, {hi:g}]")
        if self.value is not None and not math.isfinite(float(self.value)):
            raise EvostyleError(f"parameter {self.name}: fixed value must be finite, got {self.value}")
        dlo, dhi = self.domain
        if lo < dlo or hi > dhi:
            raise EvostyleError(f"parameter {self.name}: bounds [{lo:g}, {hi:g}] leave its domain [{dlo:g}, {dhi:g}]; "
                                f"give bounds inside it ({bounds_flag(self.group or self.name)})")
        return self

    @property
    def searched(self) -> bool:
        return self.value is None


class Space:
    """An ordered set of :class:`Param`; the searched ones span the unit cube in order."""

    def __init__(self, params: list[Param]):
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise EvostyleError(f"duplicate parameter names in {names}")
        self.params = [p.check() for p in params]
        self.by_name = {p.name: p for p in self.params}

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def searched(self) -> list[Param]:
        return [p for p in self.params if p.searched]

    @property
    def dim(self) -> int:
        return len(self.searched)

    def get(self, name: str) -> Param:
        if name not in self.by_name:
            raise unknown("parameter", name, self.names)
        return self.by_name[name]

    def fix(self, name: str, value: float) -> None:
        """Fix ``name`` at ``value``, which must lie within the parameter's (current) bounds."""
        p, v = self.get(name), float(value)
        if math.isfinite(v) and not p.low <= v <= p.high:
            raise EvostyleError(f"parameter {name}: fixed value {v:g} is outside its bounds [{p.low:g}, {p.high:g}]; "
                                f"fix a value inside them or change them with {bounds_flag(name)}")
        p.value = v
        p.check()

    def set_bounds(self, name: str, low: float, high: float) -> None:
        p = self.get(name)
        p.low, p.high = float(low), float(high)
        p.check()

    def to_values(self, unit: torch.Tensor) -> dict[str, torch.Tensor]:
        """(P, D) unit-cube points -> {name: (P,) float64 values} for every parameter (fixed ones too)."""
        unit = torch.as_tensor(unit, dtype=torch.float64).reshape(-1, self.dim).cpu()
        if not torch.isfinite(unit).all():
            raise EvostyleError("candidate contains NaN or inf")
        u = unit.clamp(0.0, 1.0)
        out, j = {}, 0
        for p in self.params:
            if p.searched:
                if p.scale == "log":
                    v = torch.exp(math.log(p.low) + u[:, j] * (math.log(p.high) - math.log(p.low)))
                else:
                    v = p.low + u[:, j] * (p.high - p.low)
                if p.step:
                    v = torch.round(v / p.step) * p.step
                j += 1
            else:
                v = torch.full((unit.shape[0],), float(p.value), dtype=torch.float64)
            out[p.name] = v
        return out

    def to_unit(self, values: dict[str, torch.Tensor | float]) -> torch.Tensor:
        """{name: (P,) values} for the searched parameters -> (P, D) unit-cube points."""
        cols = []
        for p in self.searched:
            if p.name not in values:
                raise EvostyleError(f"missing value for parameter {p.name!r}")
            v = torch.as_tensor(values[p.name], dtype=torch.float64).reshape(-1)
            if p.scale == "log":
                cols.append((torch.log(v) - math.log(p.low)) / (math.log(p.high) - math.log(p.low)))
            else:
                cols.append((v - p.low) / (p.high - p.low))
        return torch.stack(cols, dim=1)

    def describe(self) -> list[dict]:
        """JSON-able list of the parameters for run records."""
        return [{"name": p.name, "low": p.low, "high": p.high, "scale": p.scale, "fixed": p.value,
                 "step": p.step, "group": p.group, "unit": p.unit, "domain": list(p.domain)} for p in self.params]


SEARCH_GROUPS = ("angles", "mix", "layers", "rotation_weight", "style_ratio", "noise", "perturb", "diversity_loss")
STYLES_NEEDED = {"mix": 2}
"""Search groups that need more than one style image, and how many."""


def style_space(
    outputs: int,
    n_styles: int,
    style_layers: Sequence[str],
    search: Iterable[str],
    rotation_mode: str = DEFAULT_ROTATION_MODE,
    fixed: dict | None = None,
    bounds: dict | None = None,
) -> Space:
    """The style-search space.

    Parameters (group in brackets): ``angle_<k>`` for k < outputs, degrees in [0, 360] [angles];
    ``mix`` (2 styles: weight of the second) or ``mix_<i>`` (S > 2: raw weights, normalised) [mix];
    ``layer_<name>`` per style layer, log scale [0.1, 10] [layers]; ``rotation_weight`` in [0, 1];
    ``style_ratio`` multiplying the style weight, log scale [0.1, 10]; ``noise_sigma`` in [0, 0.5], the
    amplitude of the noise each output's start adds to the content, each output with its own seed
    [noise]; ``perturb_strength`` in [0, 1], how far each output's content target is turned by its own
    deep feature perturbation (:mod:`evostyle.style.perturb`) [perturb]; ``diversity_loss_weight`` in
    [0, 1], the weight of an inner reward for the distance between a candidate's outputs in the content
    layer (:func:`evostyle.transfer.losses.diversity_term`) [diversity_loss]. These three are levers for
    diverse outputs that leave the painting's targets alone; each is in the space only when searched,
    fixed or bounded, so that other runs keep their columns. Groups not in ``search`` are fixed:
    angles evenly spaced (0, 360/K, ...), mix uniform, layers 1, rotation weight 1, ratio 1, noise 0,
    perturbation 0, diversity reward 0.
    ``fixed`` / ``bounds`` override single parameters by name; ``bounds`` also takes a group name.
    """
    if outputs < 1:
        raise EvostyleError(f"outputs must be >= 1, got {outputs}")
    search = list(search)
    for g in search:
        if g not in SEARCH_GROUPS:
            raise unknown("search group", g, SEARCH_GROUPS)
    for g, need in STYLES_NEEDED.items():
        if g in search and n_styles < need:
            raise EvostyleError(f"search group '{g}' needs at least {need} style images ({flag('style')}); add one "
                                f"or drop '{g}'")
    on = set(search)
    params = []
    from evostyle.style.rotations import get_rotation_mode
    step = get_rotation_mode(rotation_mode).angle_step  # e.g. dfr's 0/90/180/270
    for k in range(outputs):
        params.append(Param(f"angle_{k}", 0.0, 360.0, value=None if "angles" in on else 360.0 * k / outputs,
                            step=step, group="angles", unit="deg", domain=(-3600.0, 3600.0)))
    unit = (0.0, 1.0)
    if n_styles == 2:
        params.append(Param("mix", 0.0, 1.0, value=None if "mix" in on else 0.5, group="mix",
                            unit="weight of style 1", domain=unit))
    elif n_styles > 2:
        for i in range(n_styles):
            params.append(Param(f"mix_{i}", 0.0, 1.0, value=None if "mix" in on else 1.0, group="mix",
                                unit="raw weight (normalised)", domain=unit))
    for l in style_layers:
        params.append(Param(f"layer_{l}", 0.1, 10.0, "log", value=None if "layers" in on else 1.0,
                            group="layers", unit="x base weight", domain=(0.0, math.inf)))
    params.append(Param("rotation_weight", 0.0, 1.0, value=None if "rotation_weight" in on else 1.0,
                        group="rotation_weight", unit="fraction rotated", domain=unit))
    params.append(Param("style_ratio", 0.1, 10.0, "log", value=None if "style_ratio" in on else 1.0,
                        group="style_ratio", unit="x style weight", domain=(0.0, math.inf)))
    named = set(fixed or {}) | set(bounds or {})
    for group, name, high, unit in (("noise", "noise_sigma", 0.5, "start noise amplitude ([0, 1] intensity)"),
                                    ("perturb", "perturb_strength", 1.0, "content perturbation (0: none, 1: full)"),
                                    ("diversity_loss", "diversity_loss_weight", 1.0, "x inner diversity reward")):
        if group in on or {group, name} & named:
            params.append(Param(name, 0.0, high, value=None if group in on else 0.0, group=group, unit=unit,
                                domain=(0.0, 1.0)))
    space = Space(params)
    for name, lim in (bounds or {}).items():
        try:
            lo, hi = (float(v) for v in lim)
        except (TypeError, ValueError):
            raise EvostyleError(f"bounds for {name!r} must be [low, high], got {lim!r}") from None
        targets = [p.name for p in space.params if p.group == name] if name in SEARCH_GROUPS else [name]
        for t in targets:
            space.set_bounds(t, lo, hi)
    for name, value in (fixed or {}).items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise EvostyleError(f"fixed value for {name!r} must be a number, got {value!r}") from None
        space.fix(name, v)
    if space.dim == 0:
        raise EvostyleError(f"nothing to search: every parameter is fixed; name groups with {flag('search')}")
    return space
