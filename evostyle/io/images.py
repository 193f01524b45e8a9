"""Image input and output: the only module that touches PIL.

Images inside evostyle are float tensors of shape (3, H, W) (or (B, 3, H, W)) with RGB values in
[0, 1]. Loading accepts anything PIL decodes (JPEG, PNG, WebP, BMP, ...) including grayscale, RGBA
(composited on white), palette and 16-bit files. Sizes are checked from the header before the pixels
are decoded, so a decompression bomb is refused without allocating its memory.
"""

from __future__ import annotations

import base64
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from evostyle.errors import EvostyleError
from evostyle.io.atomic import atomic_path

MAX_PIXELS = 64_000_000
"""Largest image (width x height) that will be decoded: 64 MP is about 770 MB as float32 RGB."""

MIN_SIDE = 8
"""Smallest accepted side in pixels, before and after resizing (VGG19 needs a few pixels to pool)."""

MAX_SIDE = 8192
"""Largest side a resize may produce."""


def _header(path: Path) -> tuple[int, int]:
    """Open ``path`` lazily and return (width, height) without decoding the pixels."""
    if not path.exists():
        from evostyle.io.samples import not_found_hint
        raise EvostyleError(f"image not found: {path}; {not_found_hint(str(path))}")
    if path.is_dir():
        raise EvostyleError(f"expected an image file but {path} is a directory")
    if path.stat().st_size == 0:
        raise EvostyleError(f"image file is empty: {path}")
    old_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # we apply our own, clearer limit in _check_dims
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.size
    except UnidentifiedImageError:
        raise EvostyleError(f"not an image PIL can read: {path}; use JPEG, PNG, WebP or BMP") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise EvostyleError(f"cannot read image {path}: {exc}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image file, read from its header; validates like :func:`load_image`."""
    path = Path(path)
    w, h = _header(path)
    _check_dims(path, w, h)
    return w, h


def _check_dims(path: Path, w: int, h: int) -> None:
    if w * h > MAX_PIXELS:
        gib = w * h * 3 * 4 / 2**30
        raise EvostyleError(
            f"image {path} is {w}x{h} px, which would take {gib:.1f} GiB as float RGB "
            f"(limit {MAX_PIXELS // 1_000_000} MP); downscale it first"
        )
    if min(w, h) < MIN_SIDE:
        raise EvostyleError(f"image {path} is {w}x{h} px; each side must be at least {MIN_SIDE} px")


FLOAT_OVERSHOOT = 1.5
"""A float image's values up to this are taken as on [0, 1] with a little overshoot (a filter's ringing,
clipped); above it, as on [0, 255]."""


def _float_scale(arr: np.ndarray) -> np.ndarray:
    """A floating-point image (a 32-bit TIFF) on [0, 1]: values up to :data:`FLOAT_OVERSHOOT` (and a
    rounding's slightly negative ones) are clipped to it, values up to 255 are divided by 255 (as some
    tools write 8-bit data; clipping them read the image as white). NaN, clearly negative values or
    values above 255 (HDR) have no one reading, so they are refused."""
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -0.01 or hi > 255:
        raise ValueError(f"its floating-point values run from {lo:g} to {hi:g}, not on [0, 1] or [0, 255]; "
                         "convert it to an 8- or 16-bit image")
    return np.clip(arr / 255.0 if hi > FLOAT_OVERSHOOT else arr, 0.0, 1.0)


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    """Decode any PIL mode to a float32 (H, W, 3) array in [0, 1]."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / peak, 0.0, 1.0)
        return np.repeat(arr[..., None], 3, axis=2).astype(np.float32)
    if im.mode == "F":
        return np.repeat(_float_scale(np.asarray(im, dtype=np.float64))[..., None], 3, axis=2).astype(np.float32)
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "RGB" and "transparency" in im.info):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    im = im.convert("RGB")
    return np.asarray(im, dtype=np.float32) / 255.0


def load_image(path: str | os.PathLike, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Load an image file as a (3, H, W) float32 tensor in [0, 1].

    Args:
        path: a JPEG/PNG/WebP/BMP/... file.
        size: ``None`` keeps the size; an int resizes so the long side is ``size`` px; a tuple
            ``(height, width)`` resizes to exactly that.
    Raises:
        EvostyleError: missing, empty, unreadable or truncated file, or absurd dimensions.
    """
    path = Path(path)
    w, h = _header(path)
    _check_dims(path, w, h)
    try:
        with Image.open(path) as im:
            im.load()
            arr = _to_rgb_array(ImageOps.exif_transpose(im))  # a phone photo's EXIF turn: upright
    except (OSError, SyntaxError, ValueError) as exc:
        raise EvostyleError(f"cannot decode image {path} (truncated or corrupt?): {exc}") from None
    img = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()
    if size is not None:
        img = resize(img, size)
    return img


def resize(img: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize (3, H, W) or (B, 3, H, W) to a long side of ``size`` px or to exact ``(height, width)``.

    Uses antialiased bicubic interpolation and clamps the result to [0, 1].
    """
    squeeze = img.dim() == 3
    x = img[None] if squeeze else img
    h, w = x.shape[-2:]
    if isinstance(size, int):
        if size < MIN_SIDE or size > MAX_SIDE:
            raise EvostyleError(f"size must be between {MIN_SIDE} and {MAX_SIDE} px, got {size}")
        scale = size / max(h, w)
        out_hw = (max(MIN_SIDE, round(h * scale)), max(MIN_SIDE, round(w * scale)))
    else:
        out_hw = (int(size[0]), int(size[1]))
        if min(out_hw) < MIN_SIDE or max(out_hw) > MAX_SIDE:
            raise EvostyleError(f"size must be between {MIN_SIDE} and {MAX_SIDE} px, got {out_hw}")
    if out_hw != (h, w):
        x = F.interpolate(x, size=out_hw, mode="bicubic", align_corners=False, antialias=True)
        x = x.clamp(0.0, 1.0)
    return x[0] if squeeze else x


def to_pil(img: torch.Tensor) -> Image.Image:
    """(3, H, W) tensor in [0, 1] -> 8-bit RGB PIL image (values are clamped, NaN becomes 0)."""
    arr = torch.nan_to_num(img.detach().float().cpu(), nan=0.0).clamp(0, 1)
    arr = (arr.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr, mode="RGB")


def _save_pil(im: Image.Image, path: str | os.PathLike, quality: int) -> Path:
    """Save a PIL image as PNG, JPEG or WebP (by suffix), atomically (temp + rename)."""
    path = Path(path)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(path.suffix.lower())
    if fmt is None:
        raise EvostyleError(f"cannot save {path}: use a .png, .jpg or .webp name")
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    with atomic_path(path) as tmp:
        im.save(tmp, format=fmt, **kwargs)
    return path


def save_image(img: torch.Tensor, path: str | os.PathLike, quality: int = 92) -> Path:
    """Save a (3, H, W) tensor in [0, 1] as PNG, JPEG or WebP (by suffix), atomically (temp + rename)."""
    return _save_pil(to_pil(img), path, quality)


def data_uri(path: Path) -> str:
    """An image file as a ``data:`` URI (PNG or JPEG), for pages that must open offline as one file."""
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}[path.suffix.lower()]
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
