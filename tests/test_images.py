import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from evostyle.errors import EvostyleError
from evostyle.io.images import image_size, load_image, resize, save_image
from evostyle.io.samples import sample_image
from evostyle.report.figures import MIN_CELL, save_grid


def _png_header_only(path, w, h):
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("mode,suffix", [("RGB", ".jpg"), ("RGB", ".webp"), ("RGB", ".bmp"), ("L", ".png"),
                                         ("RGBA", ".png"), ("P", ".png"), ("I;16", ".png"), ("LA", ".png")])
def test_loads_modes_and_formats(random_image_file, mode, suffix):
    x = load_image(random_image_file(mode, (20, 30), f"img{suffix}"))
    assert x.shape == (3, 20, 30) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1 and x.std() > 0.05


def test_sixteen_bit_keeps_range(tmp_path):
    arr = np.linspace(0, 65535, 20 * 20).reshape(20, 20).astype(np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(arr).save(p)
    x = load_image(p)
    assert x.min() == 0 and x.max() == pytest.approx(1.0)


def test_rgba_composited_on_white(tmp_path):
    p = tmp_path / "t.png"
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(p)
    assert torch.allclose(load_image(p), torch.ones(3, 10, 10))


def test_resize_long_side_and_exact():
    x = load_image(sample_image("cat.jpg"))
    assert max(load_image(sample_image("cat.jpg"), 64).shape[-2:]) == 64
    assert resize(x, (17, 23)).shape == (3, 17, 23)
    with pytest.raises(EvostyleError, match="size must be between"):
        resize(x, 3)


def test_save_roundtrip(tmp_path):
    x = torch.rand(3, 16, 24)
    save_image(x, tmp_path / "a.png")
    assert (load_image(tmp_path / "a.png") - x).abs().max() <= 1 / 255 + 1e-6
    save_image(x, tmp_path / "a.jpg")
    assert load_image(tmp_path / "a.jpg").shape == (3, 16, 24)
    with pytest.raises(EvostyleError, match="png"):
        save_image(x, tmp_path / "a.tiff")


def test_save_grid_lays_out_cells_with_legible_wrapped_labels(tmp_path):
    imgs = [torch.rand(3, 16, 24) for _ in range(5)]
    save_grid(imgs, tmp_path / "g.jpg", ncol=3, labels=list("abcde"), cell=96)
    g = load_image(tmp_path / "g.jpg")
    # asked for 96 px tiles, it draws MIN_CELL: 2 rows of 192 x 128 tiles and their labels
    assert g.shape[-1] >= 3 * MIN_CELL and g.shape[-2] >= 2 * MIN_CELL * 2 // 3 + 2 * 12
    assert not list(tmp_path.glob("*.tmp*"))
    long = ["DFR fixed 0/90/180/270 (dfr ops) output " + str(i) for i in range(5)]
    save_grid(imgs, tmp_path / "long.png", ncol=3, labels=long, cell=96, row_labels=["first", "second"])
    wrapped = load_image(tmp_path / "long.png")
    assert wrapped.shape[-2] > g.shape[-2]  # long labels wrap onto more lines instead of being cut
    assert wrapped.shape[-1] > g.shape[-1]  # room for the row labels
    with pytest.raises(EvostyleError, match="png"):
        save_grid(imgs, tmp_path / "g.tiff", ncol=3)


def test_errors(tmp_path):
    with pytest.raises(EvostyleError, match="image not found"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(EvostyleError, match="is a directory"):
        load_image(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(EvostyleError, match="empty"):
        load_image(tmp_path / "empty.png")
    (tmp_path / "text.jpg").write_text("hello, not an image")
    with pytest.raises(EvostyleError, match="not an image"):
        load_image(tmp_path / "text.jpg")
    data = open(sample_image("cat.jpg"), "rb").read()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(EvostyleError, match="truncated or corrupt"):
        load_image(tmp_path / "trunc.jpg")
    Image.new("RGB", (1, 1)).save(tmp_path / "one.png")
    with pytest.raises(EvostyleError, match="at least 8 px"):
        load_image(tmp_path / "one.png")


def test_huge_image_refused_from_header(tmp_path):
    p = tmp_path / "huge.png"
    _png_header_only(p, 100_000, 100_000)
    with pytest.raises(EvostyleError, match=r"100000x100000 px, which would take 111\.8 GiB"):
        image_size(p)
    with pytest.raises(EvostyleError, match="GiB"):
        load_image(p)


def test_a_float_image_is_read_on_its_own_scale_or_refused(tmp_path):
    """32-bit float TIFFs: on [0, 1] as they are, on [0, 255] divided (clipping read them as white);
    NaN, negative or HDR values are refused in one line."""
    ramp = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    for scale in (1.0, 255.0):
        Image.fromarray(ramp * scale, mode="F").save(tmp_path / "f.tiff")
        img = load_image(tmp_path / "f.tiff")
        assert img.shape == (3, 32, 32) and torch.allclose(img[0], torch.from_numpy(ramp), atol=1e-6)
    for bad in (np.nan, -1.0, 1000.0):
        Image.fromarray(np.full((32, 32), bad, np.float32), mode="F").save(tmp_path / "bad.tiff")
        with pytest.raises(EvostyleError, match="floating-point values run from .* convert it to an 8- or 16-bit"):
            load_image(tmp_path / "bad.tiff")
