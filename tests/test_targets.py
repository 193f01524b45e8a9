import pytest
import torch

from evostyle.errors import EvostyleError
from evostyle.style.measures import gram
from evostyle.style.rotations import channel_rotation, dfr_op, rotate_image, rotate_maps
from evostyle.style.targets import StyleTargets, relative_change, shuffle_features

LAYERS = ("relu1_1", "relu2_1", "relu3_1")


@pytest.fixture(scope="module")
def feats(model, style64):
    with torch.no_grad():
        return model(style64[None])["relu3_1"].float()


def test_spatial_rot90_and_flip_leave_gram_unchanged(feats):
    g = gram(feats)
    for k in (1, 2, 3):
        assert relative_change(gram(torch.rot90(feats, k, dims=(-2, -1))), g) <= 1e-5
    assert relative_change(gram(feats.flip(-1)), g) <= 1e-5
    assert relative_change(gram(feats.flip(-2)), g) <= 1e-5
    assert relative_change(gram(shuffle_features(feats, "spatial", 3)), g) <= 1e-5


def test_spatial_rotation_off_axis_changes_gram_only_through_borders(feats):
    s = min(feats.shape[-2:])
    sq = feats[..., :s, :s]
    g = gram(sq)
    r90 = rotate_maps(sq, torch.tensor([90.0]))
    assert torch.equal(r90, torch.rot90(sq, 1, dims=(-2, -1)))
    assert relative_change(gram(r90), g) <= 1e-5
    assert relative_change(gram(rotate_maps(sq, torch.tensor([30.0]))), g) > 0.01


def test_grid_rotation_direction_matches_rot90():
    x = torch.rand(1, 2, 9, 9)
    near = rotate_maps(x, torch.tensor([90.0 - 1e-4]))  # interpolated path, just off the exact one
    assert torch.allclose(near, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-3)


def test_channel_rotation_properties():
    for c in (6, 7):
        r = channel_rotation(c, torch.tensor([0.0, 360.0, 90.0, 30.0, 60.0]), seed=5)
        eye = torch.eye(c, dtype=torch.float64)
        assert torch.allclose(r[0], eye, atol=1e-12)
        assert torch.allclose(r[1], eye, atol=1e-12)
        for m in r:
            assert torch.allclose(m @ m.T, eye, atol=1e-12)
        assert torch.allclose(r[3] @ r[3], r[4], atol=1e-12)  # R(30)^2 = R(60)
    a = channel_rotation(8, torch.linspace(0, 1e-3, 2), seed=0)
    assert (a[1] - a[0]).abs().max() < 1e-4  # continuous


def test_channel_rotation_changes_real_gram(model, style64, feats):
    g = gram(feats)
    r90 = channel_rotation(feats.shape[1], torch.tensor([90.0]), seed=1).float()
    assert relative_change(r90 @ g @ r90.transpose(1, 2), g) >= 0.10
    st = StyleTargets(model, [style64], LAYERS, rotation_mode="channel")
    t = st.build(torch.ones(4, 1), torch.tensor([0.0, 90, 180, 360]), torch.ones(4))
    base = st.stats[0]["relu3_1"][0]
    assert relative_change(t["relu3_1"][0], base) < 1e-5
    assert relative_change(t["relu3_1"][3], base) < 1e-5
    assert relative_change(t["relu3_1"][1], base) >= 0.10
    assert relative_change(t["relu3_1"][2], base) >= 0.10  # 180 is not Gram-blind here


def test_channel_gram_shortcut_equals_rotating_features(model, style64):
    st = StyleTargets(model, [style64], LAYERS, rotation_mode="channel")
    angles = torch.tensor([37.0, 200.0])
    fast = st.rotated(0, angles)["relu2_1"]
    f = st.feats[0]["relu2_1"][0]
    r = channel_rotation(f.shape[0], angles, st.layer_seed("relu2_1")).float()
    slow = gram(torch.einsum("bcd,dhw->bchw", r, f))
    assert relative_change(fast, slow) < 1e-4


def test_mixing_endpoints_reproduce_single_style(model, style64, wave64):
    st = StyleTargets(model, [style64, wave64], LAYERS, rotation_mode="none")
    t = st.build(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]), torch.zeros(3), torch.zeros(3))
    for l in LAYERS:
        assert torch.allclose(t[l][0], st.stats[0][l][0])
        assert torch.allclose(t[l][1], st.stats[1][l][0])
        assert torch.allclose(t[l][2], 0.5 * (st.stats[0][l][0] + st.stats[1][l][0]), rtol=1e-5)


def test_fusion_weight_zero_is_unrotated(model, style64):
    st = StyleTargets(model, [style64], LAYERS, rotation_mode="channel")
    t = st.build(torch.ones(2, 1), torch.tensor([90.0, 90.0]), torch.tensor([0.0, 0.5]))
    base = st.stats[0]["relu1_1"][0]
    assert torch.allclose(t["relu1_1"][0], base)
    full = st.build(torch.ones(1, 1), torch.tensor([90.0]), torch.ones(1))["relu1_1"][0]
    assert torch.allclose(t["relu1_1"][1], 0.5 * base + 0.5 * full, rtol=1e-4, atol=1e-6)


def test_dfr_ops(feats):
    g = gram(feats)
    assert torch.equal(dfr_op(feats, 0), feats)
    assert relative_change(gram(dfr_op(feats, 180)), g) <= 1e-5   # a flip: Gram-blind
    assert relative_change(gram(dfr_op(feats, 90)), g) > 0.10     # transpose-reshape scramble
    assert torch.equal(dfr_op(feats, 270), dfr_op(feats, 90))      # the official code stores "90"
    x = torch.arange(24.0).view(1, 2, 3, 4)  # NCHW; DFR works on NHWC (1, 3, 4, 2)
    nhwc = x.permute(0, 2, 3, 1)
    expect = nhwc[0].permute(2, 1, 0).reshape(3, 4, 2)
    assert torch.equal(dfr_op(x, 90)[0].permute(1, 2, 0), expect)
    with pytest.raises(EvostyleError, match="0, 90, 180 or 270"):
        dfr_op(feats, 45)


def test_pixel_rotation_has_no_black_corners(style64):
    out = rotate_image(style64, torch.tensor([0.0, 30.0, 45.0]))
    assert torch.allclose(out[0], style64, atol=1e-5)
    dark = (style64.sum(0) < 0.02).float().mean()
    for img in out[1:]:
        corners = torch.stack([img[:, :3, :3], img[:, :3, -3:], img[:, -3:, :3], img[:, -3:, -3:]])
        assert corners.sum(1).min() > 0.02 or dark > 0.2
        assert relative_change(img, style64) > 0.05


def test_pixel_rotation_changes_gram_target(model, style64):
    st = StyleTargets(model, [style64], LAYERS, rotation_mode="pixel")
    t = st.build(torch.ones(2, 1), torch.tensor([0.0, 30.0]), torch.ones(2))
    assert relative_change(t["relu1_1"][0], st.stats[0]["relu1_1"][0]) < 1e-4
    assert relative_change(t["relu2_1"][1], st.stats[0]["relu2_1"][0]) > 0.01


def test_channel_shuffle_changes_gram_spatial_does_not(model, style64):
    base = StyleTargets(model, [style64], LAYERS, rotation_mode="none")
    ch = StyleTargets(model, [style64], LAYERS, rotation_mode="none", shuffle="channel", seed=1)
    sp = StyleTargets(model, [style64], LAYERS, rotation_mode="none", shuffle="spatial", seed=1)
    for l in LAYERS:
        assert relative_change(ch.stats[0][l], base.stats[0][l]) > 0.10
        assert relative_change(sp.stats[0][l], base.stats[0][l]) <= 1e-5


def test_euclidean_sees_spatial_rotation(model, style64):
    st = StyleTargets(model, [style64[:, :, :64]], LAYERS, measure="euclidean", rotation_mode="spatial")
    t = st.build(torch.ones(1, 1), torch.tensor([90.0]), torch.ones(1))
    assert relative_change(t["relu1_1"][0], st.stats[0]["relu1_1"][0]) > 0.10


def test_bad_names_and_values(model, style64):
    with pytest.raises(EvostyleError, match="valid: channel, dfr, none, pixel, spatial|valid: none"):
        StyleTargets(model, [style64], LAYERS, rotation_mode="twist")
    with pytest.raises(EvostyleError, match="unknown measure"):
        StyleTargets(model, [style64], LAYERS, measure="cosine")
    st = StyleTargets(model, [style64], LAYERS)
    with pytest.raises(EvostyleError, match="non-negative"):
        st.build(torch.tensor([[-1.0]]), torch.zeros(1), torch.ones(1))
    with pytest.raises(EvostyleError, match="finite"):
        st.build(torch.ones(1, 1), torch.tensor([float("nan")]), torch.ones(1))


def test_spatial_quarter_turn_is_gram_blind_on_non_square_maps(model, style64):
    assert style64.shape[-1] != style64.shape[-2]
    st = StyleTargets(model, [style64], LAYERS, rotation_mode="spatial")
    t = st.build(torch.ones(3, 1), torch.tensor([90.0, 270.0, 30.0]), torch.ones(3))
    for l in LAYERS:
        assert relative_change(t[l][0], st.stats[0][l][0]) <= 1e-5
        assert relative_change(t[l][1], st.stats[0][l][0]) <= 1e-5
    assert relative_change(t["relu1_1"][2], st.stats[0]["relu1_1"][0]) > 0.01


@pytest.mark.parametrize("measure", ["euclidean", "meanstd"])
def test_channel_rotation_of_feature_measures(model, style64, measure):
    """For the non-Gram measures the features themselves are rotated: angle 0 is the plain target, the
    rotated features are R(a) f at every position (norms kept), and other angles change the target."""
    from evostyle.style.measures import style_statistic
    from evostyle.style.rotations import rotate_features_channels
    st = StyleTargets(model, [style64], LAYERS, measure=measure, rotation_mode="channel")
    t = st.build(torch.ones(2, 1), torch.tensor([0.0, 90.0]), torch.ones(2))
    for l in LAYERS:
        assert relative_change(t[l][0], st.stats[0][l][0]) < 1e-5
        assert relative_change(t[l][1], st.stats[0][l][0]) > 0.05
    f = st.feats[0]["relu2_1"]
    seed = st.layer_seed("relu2_1")
    rot = rotate_features_channels(f, torch.tensor([90.0]), seed)
    r = channel_rotation(f.shape[1], torch.tensor([90.0]), seed)[0].float()
    assert torch.allclose(rot[0], torch.einsum("cd,dhw->chw", r, f[0]), atol=1e-4)
    assert torch.allclose(rot.norm(dim=1), f.norm(dim=1), rtol=1e-4, atol=1e-5)
    assert relative_change(st.rotated(0, torch.tensor([90.0]))["relu2_1"], style_statistic(rot, measure)) < 1e-6
