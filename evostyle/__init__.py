"""evostyle: search the parameters of neural style transfer with differential evolution.

Main pieces: :mod:`evostyle.features` (VGG19 taps), :mod:`evostyle.measures` (Gram, Euclidean,
mean/std), :mod:`evostyle.targets` (mixing, rotation, shuffle), :mod:`evostyle.transfer` (batched
inner optimiser), :mod:`evostyle.de` (torch-batched and scipy DE), :mod:`evostyle.search` (the CLI),
:mod:`evostyle.report` (HTML/plots) and :func:`load_run` for pandas analysis.
"""

from importlib import resources as _resources

__version__ = "0.1.0"


def sample_image(name: str) -> str:
    """Path of a bundled sample image: ``cat.jpg``, ``starry_night.jpg`` or ``great_wave.jpg``."""
    return str(_resources.files("evostyle") / "data" / name)


def resolve_image(path: str) -> str:
    """Resolve ``sample:<name>`` to a bundled image's path; other paths pass through unchanged."""
    path = str(path)
    return sample_image(path[len("sample:"):]) if path.startswith("sample:") else path


def load_run(run_dir):
    """Load a run directory for analysis: returns (candidates DataFrame, generations DataFrame)."""
    from .analysis import load_run as _load
    return _load(run_dir)


__all__ = ["__version__", "sample_image", "resolve_image", "load_run"]
