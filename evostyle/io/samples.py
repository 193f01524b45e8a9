"""The sample images bundled with evostyle, and the ``sample:<name>`` spelling for them."""

from __future__ import annotations

from importlib import resources

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def samples() -> list[str]:
    """The bundled sample images' names (``cat.jpg``, ``starry_night.jpg``, ``great_wave.jpg``)."""
    data = resources.files("evostyle") / "data"
    return sorted(p.name for p in data.iterdir() if p.name.lower().endswith(IMAGE_SUFFIXES))


def sample_image(name: str) -> str:
    """Path of a bundled sample image (:func:`samples`); an unknown name is the one-line error listing them."""
    names = samples()
    if name not in names:
        from evostyle.errors import EvostyleError
        raise EvostyleError(f"no bundled sample image {name!r}; the samples are "
                            + ", ".join(f"sample:{n}" for n in names))
    return str(resources.files("evostyle") / "data" / name)


def resolve_image(path: str) -> str:
    """Resolve ``sample:<name>`` to a bundled image's path; other paths pass through unchanged."""
    path = str(path)
    return sample_image(path[len("sample:"):]) if path.startswith("sample:") else path


def not_found_hint(path: str) -> str:
    """What to say after "image not found": ``sample:<name>`` when the missing file is named as a
    bundled sample, else to check the path."""
    from pathlib import Path
    name = Path(path).name
    return f"did you mean sample:{name} (a bundled sample)?" if name in samples() else "check the path"
