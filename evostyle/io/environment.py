"""What a record says about where it was made: versions, platform, device and date."""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only
    import torch


def environment(device: torch.device | None = None) -> dict:
    """Versions, platform, device and date, for run records."""
    from importlib import metadata

    import numpy
    import scipy
    import torch

    from evostyle import __version__
    try:
        tv = metadata.version("torchvision")  # without importing it (slow)
    except metadata.PackageNotFoundError:  # pragma: no cover
        tv = "not installed"
    env = {"evostyle": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
           "torch": torch.__version__, "torchvision": tv, "numpy": numpy.__version__,
           "scipy": scipy.__version__, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if device is not None:
        from evostyle.network.device import device_info
        env.update(device_info(device))
    return env
