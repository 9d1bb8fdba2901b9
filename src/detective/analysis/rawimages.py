"""Raw images as the user's `raw_datasets` hand them out: PIL images, arrays or tensors.

Pipeline checks need them in one form — a float tensor [C, H, W] in [0, 1] — and need to know
what they were (mode, bit depth) to spot odd files. Import this module only inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class RawInfo:
    """What a raw image is: `kind` (PIL mode like "RGB", "CMYK", "I;16", or "array uint8 3ch")."""

    kind: str
    channels: int
    width: int
    height: int


_PIL_CHANNELS = {"1": 1, "L": 1, "P": 1, "I": 1, "F": 1, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4}


def inspect(image: Any) -> RawInfo:
    """Describe a raw image; forces a full decode of PIL images so truncated files raise here."""
    from PIL import Image

    if isinstance(image, Image.Image):
        image.load()  # lazy PIL files decode here: a truncated file raises OSError
        channels = _PIL_CHANNELS.get(image.mode, 1 if image.mode.startswith("I;") else 3)
        return RawInfo(image.mode, channels, image.width, image.height)
    arr = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.ndim == 2:
        return RawInfo(f"array {arr.dtype} 1ch", 1, arr.shape[1], arr.shape[0])
    if arr.ndim == 3:
        # Tensors are [C, H, W]; arrays are usually [H, W, C].
        if isinstance(image, torch.Tensor) or arr.shape[0] in (1, 3, 4) and arr.shape[2] > 4:
            c, h, w = arr.shape
        else:
            h, w, c = arr.shape
        return RawInfo(f"array {arr.dtype} {c}ch", c, w, h)
    raise ValueError(f"raw image has shape {arr.shape}; expected 2 or 3 dimensions")


def to_unit_tensor(image: Any) -> torch.Tensor:
    """A float tensor [C, H, W] in [0, 1] from a PIL image, an array or a tensor (any bit depth)."""
    from PIL import Image

    if isinstance(image, Image.Image):
        mode = image.mode
        if mode in ("CMYK", "P", "RGBA", "LA", "YCbCr", "HSV", "LAB", "1"):
            image = image.convert("RGB" if mode not in ("LA", "1") else "L")
            mode = image.mode
        arr = np.asarray(image)
        if mode.startswith("I;16"):
            arr = arr.astype(np.float32) / 65535.0
        elif mode in ("I", "F"):
            arr = arr.astype(np.float32)
            hi = float(arr.max()) if arr.size else 1.0
            arr = arr / (65535.0 if hi > 255 else 255.0)
        else:
            arr = arr.astype(np.float32) / 255.0
        t = torch.from_numpy(np.ascontiguousarray(arr))
        return (t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)).contiguous()
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 2:
            t = t.unsqueeze(0)
        return _scale(t)
    arr = np.asarray(image)
    t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.ndim == 2:
        t = t.unsqueeze(0)
    elif t.ndim == 3 and not (t.shape[0] in (1, 3, 4) and t.shape[2] > 4):
        t = t.permute(2, 0, 1)
    return _scale(t)


def _scale(t: torch.Tensor) -> torch.Tensor:
    if t.dtype == torch.uint8:
        return t.float() / 255.0
    if t.dtype in (torch.int16, torch.int32, torch.int64) or str(t.dtype) == "torch.uint16":
        t = t.float()
        return t / (65535.0 if float(t.max()) > 255 else 255.0)
    t = t.float()
    return t / 255.0 if t.numel() and float(t.max()) > 1.5 else t


def resized(x: torch.Tensor, size: int) -> torch.Tensor:
    """[C, H, W] → [C, size, size] (antialiased when shrinking)."""
    import torch.nn.functional as F  # noqa: N812

    if tuple(x.shape[-2:]) == (size, size):
        return x
    shrink = x.shape[-1] > size or x.shape[-2] > size
    return F.interpolate(
        x.unsqueeze(0), size=(size, size), mode="bilinear", antialias=shrink, align_corners=False
    )[0]


def display_images(
    ctx: Any, split: str, indices: list[int], x: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """What a gallery shows for each item: an RGB tensor [3, H, W] in [0, 1].

    The raw image when the case has raw_datasets, else the model's input de-normalized with the
    declared NORMALIZATION (min-max scaled when that leaves [0, 1]). With `x` (the model's
    inputs for `indices`), raw images are resized to its size and the fallback reads `x` instead
    of the dataset. An item that cannot be read shows as a grey square, not a crash.
    """
    import torch.nn.functional as F  # noqa: N812

    from detective.analysis.imageprops import denormalize

    raw = None
    if ctx.case.has("raw_datasets"):
        try:
            raw = ctx.raw_dataset(split)
        except Exception:  # noqa: BLE001 - the gallery falls back to the model's inputs
            raw = None
    size = tuple(x.shape[-2:]) if x is not None else None
    out = []
    for row, i in enumerate(indices):
        try:
            if raw is not None:
                t = to_unit_tensor(raw[i][0])
                if size is not None:
                    t = F.interpolate(t[None].float(), size=size, mode="bilinear")[0]
            else:
                item = x[row] if x is not None else ctx.dataset(split)[i][0]
                t = denormalize(item.detach().cpu().float()[None], ctx.case.normalization)[0]
                lo, hi = float(t.min()), float(t.max())
                if lo < 0 or hi > 1:
                    t = (t - lo) / max(hi - lo, 1e-6)
            t = t.detach().cpu().float().clamp(0, 1)
            t = t[:1].expand(3, -1, -1) if t.shape[0] < 3 else t[:3]
        except Exception:  # noqa: BLE001 - a broken item costs one tile
            t = torch.full((3, *(size or (8, 8))), 0.5)
        out.append(t.contiguous())
    return out
