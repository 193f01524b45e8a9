"""Labelled image grids drawn with matplotlib, so every label is set in a real font at a legible size.

Images are (3, H, W) tensors in [0, 1]. Each tile is shown ``cell`` px on its long side, scaled with
nearest-neighbour sampling (a small output stays visibly small-resolution rather than smoothed); the
caller says so in its captions when that matters.
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from evostyle.errors import EvostyleError
from evostyle.io.atomic import atomic_path
from evostyle.report.plots import pyplot

if TYPE_CHECKING:  # annotations only
    from collections.abc import Sequence

DPI = 100
LABEL_PT = 9.0
"""Label size in points: 12.5 px at :data:`DPI`, legible at the committed size."""
MIN_CELL = 192
"""The smallest tile a grid draws, in px on its long side: a 32-128 px output is scaled up (nearest
neighbour) to at least this, so that a committed grid is legible as it is, without zooming."""


def _array(img: torch.Tensor) -> np.ndarray:
    return torch.nan_to_num(img.detach().float().cpu(), nan=0.0).clamp(0, 1).permute(1, 2, 0).numpy()


def save_grid(
    images: Sequence[torch.Tensor],
    path: str | os.PathLike,
    ncol: int,
    labels: Sequence[str] | None = None,
    cell: int = 160,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    quality: int = 90,
) -> Path:
    """Save ``images`` (a sequence of (3, H, W)) as a grid of ``ncol`` columns, each tile ``cell`` px on
    its long side with its label above it (wrapped to the tile's width) and optional ``row_labels``
    on the left; PNG or JPEG by suffix, written atomically (temporary file + rename). ``cell`` below
    :data:`MIN_CELL` is raised to it."""
    images = list(images)
    cell = max(int(cell), MIN_CELL)
    if not images:
        raise EvostyleError("save_grid needs at least one image")
    nrow = math.ceil(len(images) / ncol)
    h, w = max(i.shape[-2] for i in images), max(i.shape[-1] for i in images)
    scale = cell / max(h, w)
    tile_w, tile_h = w * scale / DPI, h * scale / DPI  # inches
    wrap = max(6, int(tile_w * 72 / (LABEL_PT * 0.62)))  # characters per line: ~0.6 em each, in points
    lines = max((len(textwrap.wrap(str(l), wrap)) for l in labels), default=0) if labels else 0
    label_h = lines * LABEL_PT * 1.35 / 72 + (0.06 if lines else 0.02)
    left = 1.3 if row_labels else 0.05
    fig_w = left + ncol * (tile_w + 0.05)
    title_lines = textwrap.wrap(title, max(20, int(fig_w * 72 / ((LABEL_PT + 1) * 0.6)))) if title else []
    top = len(title_lines) * (LABEL_PT + 1) * 1.4 / 72 + 0.1 if title else 0.05
    fig_h = top + nrow * (tile_h + label_h)
    plt = pyplot()
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=DPI)
    for i, img in enumerate(images):
        r, c = divmod(i, ncol)
        x0 = (left + c * (tile_w + 0.05)) / fig_w
        y0 = 1 - (top + r * (tile_h + label_h) + label_h + tile_h) / fig_h
        ax = fig.add_axes([x0, y0, tile_w / fig_w, tile_h / fig_h])
        ax.imshow(_array(img), interpolation="nearest")
        ax.set_axis_off()
        if labels:
            ax.set_title("\n".join(textwrap.wrap(str(labels[i]), wrap)), fontsize=LABEL_PT, pad=2)
    for r, text in enumerate(row_labels or []):
        y = 1 - (top + r * (tile_h + label_h) + label_h + tile_h / 2) / fig_h
        fig.text(0.05 / fig_w, y, "\n".join(textwrap.wrap(str(text), 18)), fontsize=LABEL_PT, va="center")
    if title_lines:
        fig.text(0.5, 1 - 0.05 / fig_h, "\n".join(title_lines), fontsize=LABEL_PT + 1, ha="center", va="top")
    path = Path(path)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise EvostyleError(f"cannot save {path}: use a .png or .jpg name")
    kwargs = {"pil_kwargs": {"quality": quality}} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=DPI, **kwargs)
    finally:
        plt.close(fig)
    return path
