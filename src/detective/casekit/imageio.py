"""Opening image files safely: bounded decode, modes normalized, failures named.

For users' cases: `open_image(path)` instead of `PIL.Image.open(path).convert("RGB")`, and
`ImageFolder` instead of torchvision's, so that a truncated, empty, non-image, huge or oddly-encoded
file becomes an `ImageReadError` naming the file and the cause (which `RunContext.batches` records
against the item) instead of a crash, a silent wrong conversion, or an out-of-memory kill.

- Size is checked from the header, before any pixel is decoded (`max_pixels`); Pillow's own
  decompression-bomb guard is turned into the same error.
- Truncated data is an error (Pillow's LOAD_TRUNCATED_IMAGES is never switched on): half an image
  padded with grey is a silent corruption.
- Modes become RGB (or L): CMYK and YCbCr are converted, 16/32-bit integer and float images are
  scaled to 8 bits by their range (Pillow's own `convert("L")` clips 16-bit values instead),
  palette and alpha images are composited over `background`. The original mode is reported.
- EXIF orientation is applied, so a phone photo is upright as its viewer shows it.
- `mode="original"` keeps the file's own mode (still size-checked and fully decoded): use it in
  a case's `raw_datasets` so detective's data-health check sees CMYK or 16-bit files as such.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 64_000_000  # 64 MP: an 8000x8000 photo decodes; a 100 MP scan is refused
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class ImageReadError(Exception):
    """An image file that cannot be used, with the file and the cause named."""

    def __init__(self, path: str | os.PathLike[str], cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = str(path)
        self.cause = cause


@dataclass(frozen=True)
class ImageInfo:
    path: str
    width: int
    height: int
    original_mode: str  # as stored in the file: "CMYK", "I;16", "P", "RGBA"...
    mode: str  # after normalization: "RGB" or "L"
    format: str | None


def _composite(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    rgba = image.convert("RGBA")
    base = Image.new("RGBA", rgba.size, (*background, 255))
    return Image.alpha_composite(base, rgba).convert("RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """16/32-bit integer or float single-channel images to L, scaled by their range, not clipped."""
    import numpy as np

    arr = np.asarray(image)
    if image.mode.startswith("I;16"):
        scaled = arr.astype(np.float64) / 257.0  # 0..65535 → 0..255
    elif image.mode == "I":
        hi = float(arr.max()) if arr.size else 0.0
        top = 255.0 if hi <= 255 else 65535.0 if hi <= 65535 else hi  # 8-, 16- or wider data
        scaled = arr.astype(np.float64) * (255.0 / top)
    else:  # "F"
        hi = float(np.nanmax(arr)) if arr.size else 0.0
        scaled = arr.astype(np.float64) * (255.0 if hi <= 1.0 else 1.0)
    return Image.fromarray(np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8), "L")


def normalize_mode(
    image: Image.Image, mode: str | None = "RGB", background: tuple[int, int, int] = (0, 0, 0)
) -> Image.Image:
    """An image in RGB or L (mode=None: L for single-channel data, RGB otherwise; "original":
    unchanged)."""
    src = image.mode
    if mode == "original":
        return image
    has_alpha = src in ("RGBA", "LA", "PA", "La", "RGBa") or (
        src == "P" and "transparency" in image.info
    )
    if has_alpha:
        out = _composite(image, background)
        if src in ("LA", "La"):
            out = out.convert("L")
    elif src in ("I", "F") or src.startswith("I;16"):
        out = _to_8bit(image)
    elif src == "1":
        out = image.convert("L")
    elif src in ("L", "RGB"):
        out = image
    else:  # P without transparency, CMYK, YCbCr, LAB, HSV...
        out = image.convert("RGB")
    if mode is not None and out.mode != mode:
        out = out.convert(mode)
    return out


def open_image_info(
    path: str | os.PathLike[str],
    *,
    mode: str | None = "RGB",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] = (0, 0, 0),
) -> tuple[Image.Image, ImageInfo]:
    """Decode `path` fully into memory (RGB by default) and describe what the file held.

    Raises ImageReadError (never another exception) for a missing, empty, unidentifiable,
    truncated, corrupt or too-large file.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise ImageReadError(p, f"cannot read the file ({e.strerror or e})") from e
    if size == 0:
        raise ImageReadError(p, "the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(p)
    except Image.DecompressionBombError as e:
        raise ImageReadError(p, f"refused before decoding: {e}") from e
    except UnidentifiedImageError as e:
        raise ImageReadError(p, "not an image file Pillow can identify") from e
    except Exception as e:  # a broken header can raise almost anything
        raise ImageReadError(p, f"cannot open: {type(e).__name__}: {e}") from e
    with image:
        width, height = image.size
        if max_pixels is not None and width * height > max_pixels:
            raise ImageReadError(
                p,
                f"{width}x{height} = {width * height / 1e6:.0f} megapixels is above the decode "
                f"limit of {max_pixels / 1e6:.0f} megapixels (refused before decoding, to bound "
                "memory; pass a larger max_pixels only for files you expect to be this big)",
            )
        original = image.mode
        fmt = image.format
        try:
            image.load()
            image = ImageOps.exif_transpose(image) or image
            out = normalize_mode(image, mode, background)
            out.load()
        except Exception as e:  # truncated streams raise OSError; broken chunks SyntaxError...
            cause = str(e) or type(e).__name__
            if "truncated" in cause.lower():
                cause = f"truncated image data ({cause})"
            raise ImageReadError(p, f"cannot decode ({original}, {fmt}): {cause}") from e
    if out is image:
        out = out.copy()  # detach from the closed file
    return out, ImageInfo(str(p), width, height, original, out.mode, fmt)


def open_image(
    path: str | os.PathLike[str],
    *,
    mode: str | None = "RGB",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] = (0, 0, 0),
) -> Image.Image:
    """`open_image_info` without the description."""
    return open_image_info(path, mode=mode, max_pixels=max_pixels, background=background)[0]


class ImageFolder:
    """`root/<class name>/<image file>` as a map-style dataset of (image, class index).

    Like torchvision's ImageFolder, but every file goes through `open_image`: a bad file raises
    `ImageReadError` naming it, which detective records against the item and the run goes on.
    `original_modes` collects each read item's stored mode (e.g. a CMYK file in an RGB set).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        transform: Callable[[Image.Image], Any] | None = None,
        *,
        mode: str | None = "RGB",
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        classes: Sequence[str] | None = None,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.root}")
        found = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        self.classes = list(classes) if classes is not None else found
        index = {c: i for i, c in enumerate(self.classes)}
        exts = tuple(e.lower() for e in extensions)
        self.samples: list[tuple[Path, int]] = [
            (f, index[d])
            for d in found
            if d in index
            for f in sorted((self.root / d).iterdir())
            if f.is_file() and f.suffix.lower() in exts
        ]
        self.transform = transform
        self.mode = mode
        self.max_pixels = max_pixels
        self.original_modes: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        path, label = self.samples[i]
        image, info = open_image_info(path, mode=self.mode, max_pixels=self.max_pixels)
        self.original_modes[i] = info.original_mode
        return (self.transform(image) if self.transform else image), label
