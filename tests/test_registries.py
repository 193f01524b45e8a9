"""Extending evostyle from outside the package: a diversity metric, a rotation mode, a measure and an
objective registered from Python, used by a tiny search without editing any evostyle module."""

import json

import pandas as pd
import pytest
import torch

from evostyle.errors import EvostyleError
from evostyle.search.config import make_config
from evostyle.search.run import run_search
from evostyle.search.scoring import DIVERSITY_METRICS, OBJECTIVES, DiversityMetric, Objective
from evostyle.style.measures import MEASURES, Measure
from evostyle.style.rotations import ROTATION_MODES, RotationMode


class ColourSpread(DiversityMetric):
    """Standard deviation over the K outputs of their mean colour, averaged over channels."""

    def compute(self, images, features):
        return images.mean(dim=(-1, -2)).std(dim=1).mean(dim=1).double()


class Negate(RotationMode):
    """A (silly) rotation: the unrotated Gram scaled by 1 + angle / 360."""

    def statistics(self, st, s, angles):
        k = (1 + angles / 360).float().to(st.device)
        return {l: st.stats[s][l] * k.view(-1, *(1,) * (st.stats[s][l].dim() - 1)) for l in st.layers}


class DiagonalGram(Measure):
    """Only the channel energies (the Gram diagonal)."""

    def statistic(self, f):
        return f.float().pow(2).mean(dim=(2, 3))


class FidelityOnly(Objective):
    def values(self, terms, failed, cfg):
        return torch.where(failed, torch.full_like(terms["fidelity"], float("inf")), terms["fidelity"])


@pytest.fixture
def registered():
    DIVERSITY_METRICS.register("colour", ColourSpread())
    ROTATION_MODES.register("scale", Negate())
    MEASURES.register("diag", DiagonalGram())
    OBJECTIVES.register("fidelity_only", FidelityOnly())
    yield
    for reg, name in ((DIVERSITY_METRICS, "colour"), (ROTATION_MODES, "scale"), (MEASURES, "diag"),
                      (OBJECTIVES, "fidelity_only")):
        reg.unregister(name)


def test_user_registered_variants_run_a_search_and_show_up_as_columns(tmp_path, registered):
    cfg = make_config(dict(size=32, steps=2, popsize=5, outputs=2, maxiter=1, weights="random", device="cpu",
                           seed=0, rotation_mode="scale", measure="diag", diversity_metric="colour",
                           objective="fidelity_only"))
    summary = run_search(cfg, tmp_path / "run", quiet=True, report=False)
    df = pd.read_csv(tmp_path / "run" / "candidates.csv")
    assert "diversity_colour" in df.columns and df.diversity_colour.notna().all()
    assert (df.diversity_colour >= 0).all() and df.diversity_colour.nunique() > 1
    cfgj = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfgj["plan"]["hypervolume"]["objectives"] == ["fidelity", "-diversity_colour"]
    assert summary["optimizer"]["objective"] == "fidelity_only"
    # the scalar fitness column keeps its definition; the search itself minimised fidelity alone
    assert (df.fitness - (df.fidelity - df.diversity_colour)).abs().max() < 1e-12


def test_unknown_names_list_the_known_ones_including_registered(registered):
    with pytest.raises(EvostyleError, match="unknown diversity metric 'lpips'; valid: pixel, feature, colour"):
        DIVERSITY_METRICS.get("lpips")
    with pytest.raises(EvostyleError, match="unknown rotation mode 'x'; valid: .*, scale"):
        make_config({"rotation_mode": "x"})
    with pytest.raises(EvostyleError, match="already registered"):
        MEASURES.register("gram", DiagonalGram())
    with pytest.raises(EvostyleError, match="non-empty string"):
        OBJECTIVES.register("two words", FidelityOnly())
