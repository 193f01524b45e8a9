"""torch.compile of the inner step: the compile cache, the modes and the fallback to eager."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from evostyle.errors import describe
from evostyle.network.device import is_oom

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

_COMPILED: dict = {}
"""{(function, mode): ``torch.compile(function, mode=mode)``}, each built on first use in this process."""
_COMPILE_FAILED = False
"""Set once a compilation failed: later transfers in this process run eager without trying again."""


def compiled(fn: Callable, mode: str = "default") -> Callable:
    """``torch.compile(fn, mode=mode)`` (``loss_terms`` or ``adam_clamp``), built once per process and
    mode; ``fn`` itself once a compilation has failed."""
    if _COMPILE_FAILED:
        return fn
    if (fn, mode) not in _COMPILED:
        # static shapes: a search has one batch shape (P*K rows; its K-row baseline runs eager), and
        # kernels specialised to a shape are the fast ones; each new shape compiles once
        _COMPILED[(fn, mode)] = torch.compile(fn, dynamic=False, mode=mode)
    return _COMPILED[(fn, mode)]


def resolve_compile_mode(mode: str, device: torch.device | str) -> str:
    """The torch.compile mode that ``mode`` means on ``device`` (a torch.device or its name):
    ``auto`` is ``reduce-overhead`` on CUDA (CUDA graphs) and ``default`` elsewhere, where inductor
    records no graphs; any other mode is itself."""
    if mode != "auto":
        return mode
    return "reduce-overhead" if torch.device(device).type == "cuda" else "default"


def fall_back_to_eager(exc: BaseException, ran_eager: bool, note: Callable[[str], None]) -> None:
    """Handle ``exc`` raised by a step or an update: re-raise it if that code ran eager or ran out of
    memory (the transfer halves its chunk on that); else it is a failed compilation: log it, and this
    process runs eager from here on."""
    global _COMPILE_FAILED
    if ran_eager or is_oom(exc):
        raise exc
    _COMPILE_FAILED = True
    note(f"torch.compile failed ({describe(exc)}); running eager from here on")


def reset_compile() -> None:
    """Forget the compiled functions (and any earlier failure): the next compiled transfer compiles
    anew."""
    global _COMPILED, _COMPILE_FAILED
    _COMPILED, _COMPILE_FAILED = {}, False


def compile_disabled() -> bool:
    """True once a compilation has failed in this process: transfers asking for ``compile`` run eager."""
    return _COMPILE_FAILED
