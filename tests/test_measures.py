import pytest
import torch

from evostyle.errors import EvostyleError
from evostyle.style.measures import content_term, gram, mean_std, relative_sq_error, style_term, total_variation


def test_gram_worked_example_from_design():
    f = torch.tensor([[4.0, 0, 3, 1], [3, 0, 1, 2], [1, 2, 3, 6]]).view(1, 3, 2, 2)
    expected = torch.tensor([[26.0, 17, 19], [17, 14, 18], [19, 18, 50]])
    assert torch.equal(gram(f, norm="none")[0], expected)
    assert torch.allclose(gram(f, norm="hw")[0], expected / 4)
    assert torch.allclose(gram(f, norm="chw")[0], expected / 12)


def test_gram_symmetric_psd_and_matches_matmul():
    torch.manual_seed(1)
    f = torch.randn(3, 8, 5, 7)
    g = gram(f)
    assert g.shape == (3, 8, 8)
    assert torch.allclose(g, g.transpose(1, 2))
    assert torch.linalg.eigvalsh(g.double()).min() > -1e-6
    flat = f.flatten(2)
    ref = flat @ flat.transpose(1, 2) / (5 * 7)
    assert torch.allclose(g, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channels_last", [False, True])
def test_gram_gradient_matches_einsum_reference(channels_last):
    """Our one-product backward equals autograd's rule for einsum(f, f), in both memory layouts, and
    hands back the gradient in the input's layout (no transposing copy for the next op)."""
    gen = torch.Generator().manual_seed(3)
    f = torch.randn(2, 5, 6, 7, dtype=torch.float64, generator=gen)
    if channels_last:
        f = f.contiguous(memory_format=torch.channels_last)
    f.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: gram(x, "chw"), (f,))
    w = torch.randn(2, 5, 5, dtype=torch.float64, generator=gen)  # not symmetric on purpose
    (ours,) = torch.autograd.grad((gram(f) * w).sum(), f)
    ref = torch.einsum("bchw,bdhw->bcd", f, f) / 42
    (theirs,) = torch.autograd.grad((ref * w).sum(), f)
    assert torch.allclose(gram(f), ref, rtol=1e-12, atol=0)
    assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    assert ours.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_gram_of_bf16_features_is_float32_and_close():
    gen = torch.Generator().manual_seed(4)
    f = torch.rand(2, 16, 12, 12, generator=gen).bfloat16().contiguous(memory_format=torch.channels_last)
    g = gram(f)
    ref = gram(f.double())
    assert g.dtype == torch.float32
    assert float((g.double() - ref).norm() / ref.norm()) < 1e-2  # bf16 products, float32 accumulation


def test_gram_unknown_norm():
    with pytest.raises(EvostyleError, match="valid: hw, chw, none"):
        gram(torch.ones(1, 1, 2, 2), norm="bad")


def test_relative_error_is_scale_free():
    torch.manual_seed(2)
    t = torch.rand(2, 4, 6, 6)
    x = t + 0.1 * torch.randn_like(t)
    a = relative_sq_error(x, t)
    b = relative_sq_error(1000 * x, 1000 * t)
    assert torch.allclose(a, b, rtol=1e-4)
    assert torch.allclose(relative_sq_error(t, t), torch.zeros(2))
    assert torch.allclose(relative_sq_error(torch.zeros_like(t), t), torch.ones(2))


def test_terms_per_row_and_broadcast():
    torch.manual_seed(3)
    f = torch.rand(4, 5, 6, 6)
    c = torch.rand(1, 5, 6, 6)
    assert content_term(f, c).shape == (4,)
    for m in ("gram", "euclidean", "meanstd"):
        target = {"gram": gram(f[:1]), "euclidean": f[:1], "meanstd": mean_std(f[:1])}[m]
        t = style_term(f, target, m)
        assert t.shape == (4,) and t[0].abs() < 1e-6 and (t[1:] > 0).all()
    with pytest.raises(EvostyleError, match="valid: gram, euclidean, meanstd"):
        style_term(f, f, "cosine")


def test_mean_std_shape_and_values():
    f = torch.arange(8.0).view(1, 2, 2, 2)
    ms = mean_std(f, eps=0)
    assert ms.shape == (1, 2, 2)
    assert torch.allclose(ms[0, 0], torch.tensor([1.5, 5.5]))
    assert torch.allclose(ms[0, 1], torch.tensor([1.25 ** 0.5] * 2))


def test_total_variation():
    flat = torch.full((1, 3, 8, 8), 0.5)
    assert total_variation(flat).item() == 0
    stripes = torch.zeros(1, 3, 8, 8)
    stripes[..., ::2] = 1
    assert total_variation(stripes).item() == pytest.approx(1.0)
