"""Input statistics measured on a sample of the user's images, for NORMALIZATION and the report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detective.casekit.imageio import ImageReadError, open_image_info

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImageStats:
    sampled: int
    unreadable: tuple[str, ...]  # "path: cause" of files that could not be read
    mean: tuple[float, ...]  # per channel, in [0, 1] units, after resize + centre crop
    std: tuple[float, ...]
    median_size: tuple[int, int]  # (width, height) of the files as stored
    min_size: tuple[int, int]


def _sample(files: Sequence[Path], n: int, seed: int) -> list[Path]:
    import numpy as np

    if len(files) <= n:
        return list(files)
    rng = np.random.default_rng(seed)
    return [files[i] for i in sorted(rng.choice(len(files), size=n, replace=False))]


def stored_sizes(files: Sequence[Path], n: int = 256, seed: int = 0) -> list[tuple[int, int]]:
    """(width, height) of a sample of files, from their headers (nothing is decoded)."""
    from PIL import Image

    sizes = []
    for path in _sample(files, n, seed):
        try:
            with Image.open(path) as image:
                sizes.append(image.size)
        except Exception:  # noqa: S112 - unreadable files are reported by measure()
            continue
    return sizes


def measure(
    files: Sequence[Path], image_size: int, resize: int, n: int = 256, seed: int = 0
) -> ImageStats:
    """Per-channel mean/std of up to `n` images (RGB, resized to `resize` and centre-cropped to
    `image_size`, as the eval transform does), and their stored sizes."""
    import numpy as np
    from torchvision import transforms as T  # noqa: N812

    prep = T.Compose([T.Resize(resize), T.CenterCrop(image_size)])
    total = np.zeros(3)
    total_sq = np.zeros(3)
    pixels = 0
    sizes: list[tuple[int, int]] = []
    bad: list[str] = []
    for path in _sample(files, n, seed):
        try:
            image, info = open_image_info(path)
        except ImageReadError as e:
            bad.append(str(e))
            continue
        sizes.append((info.width, info.height))
        arr = np.asarray(prep(image), dtype=np.float64).reshape(-1, 3) / 255.0
        total += arr.sum(0)
        total_sq += (arr**2).sum(0)
        pixels += len(arr)
    if not pixels:
        return ImageStats(0, tuple(bad), (), (), (0, 0), (0, 0))
    mean = total / pixels
    std = np.sqrt(np.maximum(total_sq / pixels - mean**2, 1e-12))
    widths = sorted(w for w, _ in sizes)
    heights = sorted(h for _, h in sizes)
    return ImageStats(
        len(sizes),
        tuple(bad),
        tuple(round(float(v), 4) for v in mean),
        tuple(round(float(v), 4) for v in std),
        (widths[len(widths) // 2], heights[len(heights) // 2]),
        (widths[0], heights[0]),
    )
