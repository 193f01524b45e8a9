"""Shared fixtures: tiny images, a seeded random-init VGG19 (no network, no ImageNet weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from evostyle.io.images import load_image
from evostyle.io.samples import sample_image
from evostyle.network.features import VGGFeatures

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(autouse=True)
def _fresh_logging():
    """Each test starts with the ``evostyle`` logger as a library user gets it (no handler, records
    propagate) and Python's own warning display: a command line run in-process by an earlier test
    (``setup_logging``) must not decide where a later test's messages go."""
    import logging
    import warnings
    log, shown = logging.getLogger("evostyle"), warnings.showwarning

    def reset():
        log.handlers, log.propagate = [], True
        log.setLevel(logging.NOTSET)
        warnings.showwarning = shown
    reset()
    yield
    reset()


@pytest.fixture(scope="session", autouse=True)
def _weights_cache(tmp_path_factory):
    """Converted weights go to a cache of the test session's own, never the user's (subprocesses
    inherit it)."""
    import os
    old = os.environ.get("EVOSTYLE_CACHE")
    os.environ["EVOSTYLE_CACHE"] = str(tmp_path_factory.mktemp("evostyle-cache"))
    yield
    if old is None:
        os.environ.pop("EVOSTYLE_CACHE", None)
    else:
        os.environ["EVOSTYLE_CACHE"] = old


@pytest.fixture(scope="session")
def offline_vgg16():
    """The offline ImageNet VGG16 (the test extra installs it; its package needs Python 3.11), resolved once."""
    import sys
    if sys.version_info < (3, 11):  # pragma: no cover
        pytest.skip("the offline ImageNet VGG16's package needs Python 3.11 or later")
    from evostyle.network.weights import resolve_weights
    return resolve_weights("offline")


@pytest.fixture(scope="session")
def model():
    return VGGFeatures(("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"),
                       weights="random", seed=0)


@pytest.fixture(scope="session")
def content64():
    return load_image(sample_image("cat.jpg"), 64)


@pytest.fixture(scope="session")
def style64(content64):
    return load_image(sample_image("starry_night.jpg"), tuple(content64.shape[-2:]))


@pytest.fixture(scope="session")
def wave64(content64):
    return load_image(sample_image("great_wave.jpg"), tuple(content64.shape[-2:]))


@pytest.fixture
def fake_compile(monkeypatch):
    """``torch.compile`` replaced by a recorder that returns the function as it is (inductor takes
    minutes on this CPU), with the transfer's compile cache empty and no failure recorded. The
    fixture's value lists each call as (function name, keyword arguments)."""
    from evostyle.transfer import compiling
    calls = []

    def compile_(fn, **kw):
        calls.append((fn.__name__, kw))
        return fn

    monkeypatch.setattr(torch, "compile", compile_)
    monkeypatch.setattr(compiling, "_COMPILED", {})
    monkeypatch.setattr(compiling, "_COMPILE_FAILED", False)
    return calls


@pytest.fixture
def random_image_file(tmp_path):
    """Factory: write a seeded random image of PIL ``mode`` and size (h, w) as ``name``; returns its path.

    ``I;16`` is 16-bit grayscale over the full 0-65535 range; other modes are converted from RGB noise.
    """
    def make(mode: str, hw: tuple[int, int], name: str):
        rng = np.random.default_rng(0)
        if mode == "I;16":
            im = Image.fromarray((rng.random(hw) * 65535).astype(np.uint16))
        else:
            im = Image.fromarray((rng.random((*hw, 3)) * 255).astype(np.uint8)).convert(mode)
        path = tmp_path / name
        im.save(path)
        return path
    return make


@pytest.fixture
def interrupt_at(monkeypatch):
    """``interrupt_at(g)``: searches from now on are killed (a KeyboardInterrupt, as Ctrl-C outside the
    handlers) as their generation ``g`` starts; ``interrupt_at(None)`` ends that."""
    from evostyle.search.problem import SearchProblem
    real = SearchProblem._evaluate

    def set_(generation):
        def stop(self, g, unit, *fidelity):
            if g == generation:
                raise KeyboardInterrupt("simulated kill")
            return real(self, g, unit, *fidelity)
        monkeypatch.setattr(SearchProblem, "_evaluate", real if generation is None else stop)
    return set_


@pytest.fixture
def one_line(capsys):
    """``one_line(main, argv, code=2)``: run a command line's ``main(argv)``, check that it exits with
    ``code`` after exactly one line on stderr and no traceback, and return that line."""
    def run(main, argv, code=2) -> str:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0], err
        return err[0]
    return run
