"""Where a batch of transfers stands, so that it can go on later: the images and the inner optimiser's
state, row by row.

A multi-fidelity search (DEHB's rungs) runs every candidate for a few steps and continues only the
promising ones; continuing from a :class:`TransferState` instead of starting over gives, in exact
arithmetic, the very images one uninterrupted transfer of the summed steps would (tested in fp64): the
images, Adam's moments and step count, or L-BFGS's per-row history, are all a step depends on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TransferState:
    """B rows' optimisation, on the CPU, in the dtype it ran in (float32 images between the scales of
    a coarse-to-fine ladder, as the ladder itself passes them on).

    images: (B, 3, H, W) where each row stands (not yet re-evaluated); steps: (B,) inner steps taken;
    failed: (B,) bool, rows whose loss became NaN/inf (they stay failed); optimizer: the inner
    optimiser's name; buffers: its state, every tensor batch-first ((B, ...)), as its ``state()``
    gives it (empty for a coarse-to-fine ladder stopped where a scale ends: the next scale starts a
    fresh optimiser from the images, :meth:`~evostyle.transfer.engine.StyleEngine.optimise`).
    """

    images: torch.Tensor
    steps: torch.Tensor
    failed: torch.Tensor
    optimizer: str
    buffers: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def rows(self, index: slice | Sequence[int] | torch.Tensor) -> TransferState:
        """The state of the rows ``index`` selects (a slice, or row numbers in any order, repeats allowed)."""
        take = (lambda t: t[index]) if isinstance(index, slice) else \
            (lambda t: t.index_select(0, torch.as_tensor(index, dtype=torch.long)))
        return TransferState(take(self.images), take(self.steps), take(self.failed), self.optimizer,
                             {k: take(v) for k, v in self.buffers.items()})

    @classmethod
    def cat(cls, parts: Sequence[TransferState]) -> TransferState:
        """The rows of ``parts``, in order, as one state (one inner optimiser for all)."""
        names = {p.optimizer for p in parts}
        if len(names) != 1:
            raise ValueError(f"cannot join the states of different inner optimisers: {sorted(names)}")
        return cls(torch.cat([p.images for p in parts]), torch.cat([p.steps for p in parts]),
                   torch.cat([p.failed for p in parts]), parts[0].optimizer,
                   {k: torch.cat([p.buffers[k] for p in parts]) for k in parts[0].buffers})
