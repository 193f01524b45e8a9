"""Device and numeric-precision resolution.

Precision names: ``fp32`` (strict float32), ``tf32`` (float32 storage, TF32 matrix units on CUDA),
``bf16`` (autocast to bfloat16 for the network; losses stay float32), ``fp64`` (float64 everywhere:
a slow reference for checks). ``auto`` means bf16 + channels_last on CUDA and fp32 on the CPU.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from evostyle.errors import EvostyleError, flag, is_out_of_memory, unknown

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterator

PRECISIONS = ("auto", "fp32", "tf32", "bf16", "fp64")


def is_channels_last(t: torch.Tensor) -> bool:
    """True for a (B, C, H, W) tensor stored channels-last (and not also plain contiguous)."""
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def is_oom(exc: BaseException) -> bool:
    """True if ``exc`` is an out-of-memory error on any device (:func:`evostyle.errors.is_out_of_memory`)."""
    return is_out_of_memory(exc)


def to_host(t: torch.Tensor) -> torch.Tensor:
    """``t`` on the CPU, stored contiguous (NCHW for images), whatever its device and layout.

    From a GPU the layout is changed there (fast) and the copy goes through page-locked memory from
    PyTorch's caching host allocator, which keeps the buffer for the next copy of that size: a
    pageable copy is several times slower and a channels_last tensor would be reordered on the host.
    The result is page-locked memory, freed to the cache when dropped.
    """
    if not t.is_cuda:
        return t.cpu().contiguous()
    t = t.contiguous()
    out = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    out.copy_(t, non_blocking=True)
    torch.cuda.current_stream(t.device).synchronize()
    return out


def available_host_memory() -> int | None:
    """Bytes of memory the host can still give a process (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda`` without a GPU is an error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise EvostyleError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EvostyleError(f"device {spec!r} requested but no CUDA GPU is available; use {flag('device', 'cpu')}")
    if dev.type not in ("cpu", "cuda"):
        raise EvostyleError(f"unsupported device {spec!r}; use auto, cpu, cuda or cuda:N")
    return dev


@dataclass(frozen=True)
class Precision:
    """Resolved numeric settings for one device."""

    name: str
    channels_last: bool

    @property
    def dtype(self) -> torch.dtype:
        """Storage dtype of images, features and losses."""
        return torch.float64 if self.name == "fp64" else torch.float32

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.name == "bf16" else None

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """Context manager for the network's forward pass."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.autocast_dtype)

    @contextlib.contextmanager
    def matmul_mode(self) -> Iterator[None]:
        """Set TF32 on or off for the duration (restored afterwards)."""
        old_mm = torch.backends.cuda.matmul.allow_tf32
        old_cd = torch.backends.cudnn.allow_tf32
        on = self.name in ("tf32", "bf16")
        torch.backends.cuda.matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old_mm
            torch.backends.cudnn.allow_tf32 = old_cd


def resolve_precision(spec: str, device: torch.device, channels_last: bool | None = None) -> Precision:
    """Resolve ``auto``/``fp32``/``tf32``/``bf16`` and the memory layout for ``device``."""
    if spec not in PRECISIONS:
        raise unknown("precision", spec, PRECISIONS)
    cuda = device.type == "cuda"
    name = ("bf16" if cuda else "fp32") if spec == "auto" else spec
    if channels_last is None:
        channels_last = cuda
    return Precision(name=name, channels_last=bool(channels_last))


def device_info(device: torch.device) -> dict:
    """JSON-able description of the device for run records."""
    info = {"device": str(device), "torch": torch.__version__}
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        info["gpu"] = torch.cuda.get_device_name(idx)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    else:
        info["threads"] = torch.get_num_threads()
    return info
