"""Grayscale texture patches for the `textures` family (scikit-image's bundled images)."""

from __future__ import annotations

import numpy as np

TEXTURES = ("brick", "grass", "gravel", "moon", "coins", "cell")


def texture_patches(
    split: str, n_per_class: int, size: int = 24, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Grayscale size×size patches of scikit-image's bundled textures and micrographs (TEXTURES),
    taken at half resolution, labelled by source. Train patches come from the left 60 % of each
    image, val patches from the rest."""
    import skimage.data

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, name in enumerate(TEXTURES):
        src = getattr(skimage.data, name)().astype(np.float32)
        h, w = src.shape
        src = src[: h - h % 2, : w - w % 2].reshape(h // 2, 2, w // 2, 2).mean((1, 3))
        h, w = src.shape
        edge = int(w * 0.6)
        lo, hi = (0, edge - size) if split == "train" else (edge, w - size)
        for _ in range(n_per_class):
            y0, x0 = rng.integers(0, h - size + 1), rng.integers(lo, hi + 1)
            images.append(src[y0 : y0 + size, x0 : x0 + size])
            labels.append(label)
    order = rng.permutation(len(labels))
    out = np.clip(np.stack(images), 0, 255).round().astype(np.uint8)
    return out[order], np.asarray(labels, np.int64)[order]
