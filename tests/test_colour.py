"""Keeping the photo's colours (Gatys et al. 2017): luminance-only keeps the outputs' luminance in the
photo's chroma; histogram matching gives a painting the photo's colour mean and covariance; the
transfer command does each."""

import json

import torch

from evostyle.cli.transfer import main
from evostyle.io.images import load_image
from evostyle.io.samples import sample_image
from evostyle.style.colour import ORIGINAL_COLOURS, RGB_TO_YIQ, luminance_only, match_colour

yiq = lambda x: torch.einsum("ij,...jhw->...ihw", RGB_TO_YIQ, x.double())


def _image(seed, lo=0.2, hi=0.8):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(3, 12, 10, generator=g, dtype=torch.float64)


def test_luminance_only_keeps_the_outputs_luminance_and_the_photos_chroma():
    out, photo = torch.stack([_image(1, 0.3, 0.6), _image(2, 0.3, 0.6)]), _image(3, 0.4, 0.6)
    kept = luminance_only(out, photo)
    assert kept.shape == out.shape and kept.dtype == out.dtype
    assert torch.allclose(yiq(kept)[:, 0], yiq(out)[:, 0], atol=1e-9)   # the outputs' luminance
    assert torch.allclose(yiq(kept)[:, 1:], yiq(photo)[1:].expand(2, -1, -1, -1), atol=1e-9)  # the photo's chroma


def test_histogram_matching_gives_the_painting_the_photos_colour_statistics():
    photo = _image(4, 0.3, 0.7)
    mixing = torch.tensor([[0.5, 0.3, 0.0], [0.2, 0.2, 0.1], [0.0, 0.1, 0.3]], dtype=torch.float64)
    painting = 0.1 + torch.einsum("ij,jhw->ihw", mixing, _image(5, 0, 1))  # another palette, channels correlated
    assert not torch.allclose(torch.cov(painting.reshape(3, -1)), torch.cov(photo.reshape(3, -1)), atol=1e-3)
    moved = match_colour(painting, photo)
    assert 0 < moved.min() and moved.max() < 1  # inside [0, 1]: the clamp did nothing here
    m, p = moved.reshape(3, -1), photo.reshape(3, -1)
    assert torch.allclose(m.mean(1), p.mean(1), atol=1e-9)
    assert torch.allclose(torch.cov(m), torch.cov(p), rtol=2e-3, atol=1e-5)
    flat = match_colour(torch.full((3, 4, 4), 0.5, dtype=torch.float64), photo)  # one colour: no NaN
    assert torch.isfinite(flat).all()
    assert set(ORIGINAL_COLOURS) == {"luminance", "histogram"}


def test_the_transfer_command_keeps_the_photos_colours_either_way(tmp_path):
    cat = sample_image("cat.jpg")
    base = ["--content", cat, "--style", "sample:starry_night.jpg", "--size", "32", "--steps", "3",
            "--weights", "random", "--device", "cpu", "-q"]
    photo = load_image(cat, 32)
    chroma = {}
    for mode in (None, "luminance", "histogram"):
        out = tmp_path / str(mode)
        assert main(base + ["--out", str(out)] + ([] if mode is None else ["--original-colors", mode])) == 0
        img = load_image(out / "output_0.png")
        chroma[mode] = (yiq(img)[1:] - yiq(photo)[1:]).abs().mean().item()
        assert json.loads((out / "losses.json").read_text())["config"]["original_colors"] == mode
    assert chroma["luminance"] < 0.01 < chroma[None]  # the photo's chroma (up to 8-bit rounding)
    assert chroma["histogram"] != chroma[None]
