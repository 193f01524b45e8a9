"""The rotation-mode registry and the modes whose targets non-negative features can reach."""

import pytest
import torch

from evostyle.errors import EvostyleError
from evostyle.style.measures import gram
from evostyle.style.rotations import ROTATION_MODES, RotationMode, get_rotation_mode, rectify_rotated
from evostyle.style.targets import StyleTargets, relative_change

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
ANGLES = torch.tensor([0.0, 15.0, 30.0, 60.0, 90.0, 120.0, 180.0, 270.0, 359.0, 360.0])


@pytest.mark.parametrize("mode", ["rectified", "preact"])
def test_reachable_modes_have_no_negative_gram_entries_and_are_identity_at_0(model, style64, mode):
    st = StyleTargets(model, [style64], LAYERS, rotation_mode=mode)
    t = st.build(torch.ones(len(ANGLES), 1), ANGLES, torch.ones(len(ANGLES)))
    for l in LAYERS:
        assert (t[l] >= 0).all(), (mode, l)  # a Gram of non-negative features, at every angle
        base = st.stats[0][l][0]
        assert relative_change(t[l][0], base) < 1e-5  # identity at 0 (to float rounding)
        assert relative_change(t[l][-1], base) < 1e-5  # and 360-periodic
        assert relative_change(t[l][4], base) > 0.3  # 90 degrees changes the target
    assert get_rotation_mode(mode).nonnegative_gram


def test_channel_mode_makes_negative_gram_entries_the_reason_for_the_new_modes(model, style64):
    st = StyleTargets(model, [style64], LAYERS, rotation_mode="channel")
    t = st.build(torch.ones(1, 1), torch.tensor([90.0]), torch.ones(1))
    assert all(float((t[l] < 0).float().mean()) > 0.2 for l in LAYERS)
    assert not get_rotation_mode("channel").nonnegative_gram


def test_rectified_rotation_keeps_the_energy_and_rectifies():
    z = torch.randn(1, 6, 5, 5, generator=torch.Generator().manual_seed(0))
    energy = torch.relu(z).norm()
    r = rectify_rotated(z, torch.tensor([0.0, 45.0, 200.0]), seed=3, energy=energy)
    assert (r >= 0).all() and torch.allclose(r.flatten(1).norm(dim=1), energy.expand(3), rtol=1e-5)
    assert torch.allclose(r[0], torch.relu(z[0]) * energy / torch.relu(z[0]).norm(), atol=1e-5)


def test_preact_rotates_the_convolution_output_before_the_relu(model, style64):
    st = StyleTargets(model, [style64], ("relu2_1",), rotation_mode="preact")
    z = st.preactivations(0)["relu2_1"]
    assert (z < 0).any() and torch.allclose(torch.relu(z), st.feats[0]["relu2_1"], atol=1e-6)
    t = st.rotated(0, torch.tensor([50.0]))["relu2_1"]
    expect = gram(rectify_rotated(z, torch.tensor([50.0]), st.layer_seed("relu2_1"), st.feats[0]["relu2_1"].norm()))
    assert relative_change(t, expect) < 1e-6


def test_registry_names_rules_and_user_modes(model, style64):
    assert list(ROTATION_MODES) == ["none", "channel", "rectified", "preact", "spatial", "pixel", "dfr"]
    with pytest.raises(EvostyleError, match="unknown rotation mode 'twist'; valid: none, channel, rectified"):
        get_rotation_mode("twist")
    with pytest.raises(EvostyleError, match="takes angles 0, 90, 180 or 270, got 45"):
        get_rotation_mode("dfr").check_angles([90, 45])
    with pytest.raises(EvostyleError, match="already registered"):
        ROTATION_MODES.register("channel", RotationMode())

    class Halve(RotationMode):
        """A user's mode: the target scaled by 1 - angle / 720 (any object with statistics() will do)."""
        angle_step = 30.0

        def statistics(self, st, s, angles):
            k = (1 - angles / 720).float().to(st.device)
            return {l: st.stats[s][l] * k.view(-1, 1, 1) for l in st.layers}

    ROTATION_MODES.register("halve", Halve())
    try:
        st = StyleTargets(model, [style64], ("relu1_1",), rotation_mode="halve")
        t = st.build(torch.ones(2, 1), torch.tensor([0.0, 360.0]), torch.ones(2))["relu1_1"]
        assert torch.allclose(t[1], 0.5 * st.stats[0]["relu1_1"][0])
        with pytest.raises(EvostyleError, match="multiples of 30 degrees, got 45"):
            st.build(torch.ones(1, 1), torch.tensor([45.0]), torch.ones(1))
    finally:
        ROTATION_MODES.unregister("halve")
    assert "halve" not in ROTATION_MODES


def test_the_modes_do_not_import_the_targets():
    """targets imports the modes' registry; the modes read the targets through ``StyleSource`` and
    never import them, not even for annotations, so the dependency runs one way."""
    import ast
    from pathlib import Path

    import evostyle.style.rotations as rotations
    tree = ast.parse(Path(rotations.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "evostyle.style.targets" not in imported
