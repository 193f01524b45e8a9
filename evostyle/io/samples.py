"""The sample images bundled with evostyle, and the ``sample:<name>`` spelling for them."""

from __future__ import annotations

from importlib import resources


def sample_image(name: str) -> str:
    """Path of a bundled sample image: ``cat.jpg``, ``starry_night.jpg`` or ``great_wave.jpg``."""
    return str(resources.files("evostyle") / "data" / name)


def resolve_image(path: str) -> str:
    """Resolve ``sample:<name>`` to a bundled image's path; other paths pass through unchanged."""
    path = str(path)
    return sample_image(path[len("sample:"):]) if path.startswith("sample:") else path
