"""Generated data for benchmark cases that need more than the digits (the generator is the data)."""

from __future__ import annotations

import numpy as np

SHAPES = ("circle", "ellipse", "square", "triangle", "cross")


def _shape_mask(kind: str, size: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = xx - cx, yy - cy
    if kind == "circle":
        return dx**2 + dy**2 <= r**2
    if kind == "ellipse":  # 1.3:1 axes: at 16 px and with noise, hard to tell from a circle
        return (dx / (r * 1.14)) ** 2 + (dy / (r / 1.14)) ** 2 <= 1.0
    if kind == "square":
        return (np.abs(dx) <= r * 0.85) & (np.abs(dy) <= r * 0.85)
    if kind == "triangle":
        return (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    if kind == "cross":
        return ((np.abs(dx) <= r * 0.3) & (np.abs(dy) <= r)) | (
            (np.abs(dy) <= r * 0.3) & (np.abs(dx) <= r)
        )
    raise ValueError(kind)


def shapes(
    n_per_class: int, size: int = 16, noise: float = 40.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, size, size) of filled shapes at random position and radius, plus noise."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, kind in enumerate(SHAPES):
        for _ in range(n_per_class):
            r = rng.uniform(size * 0.22, size * 0.34)
            cx, cy = rng.uniform(r + 1, size - r - 1, size=2)
            img = _shape_mask(kind, size, cx, cy, r) * rng.uniform(150, 230)
            img = img + rng.normal(0, noise, (size, size))
            images.append(np.clip(img, 0, 255).astype(np.uint8))
            labels.append(label)
    order = rng.permutation(len(labels))
    return np.stack(images)[order], np.asarray(labels, np.int64)[order]


def noisy(images: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Fixed per-image Gaussian pixel noise (a sensor that is simply noisy: a Bayes-error floor)."""
    rng = np.random.default_rng(seed)
    out = images.astype(np.float64) + rng.normal(0, sigma, images.shape)
    return np.clip(out, 0, 255).round().astype(np.uint8)


def tinted(images: np.ndarray, seed: int) -> np.ndarray:
    """Grayscale (N,H,W) → RGB (N,H,W,3): ink and paper in random colours per image."""
    rng = np.random.default_rng(seed)
    ink = rng.uniform(0.5, 1.0, (len(images), 1, 1, 3))
    paper = rng.uniform(0.0, 0.35, (len(images), 1, 1, 3))
    a = images[..., None].astype(np.float64) / 255.0
    return np.clip((a * ink + (1 - a) * paper) * 255, 0, 255).round().astype(np.uint8)


PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry")


def photo(name: str, height: int = 128, width: int = 192) -> np.ndarray:
    """One of scikit-image's bundled RGB photographs, resized to (height, width, 3) uint8."""
    import skimage.data
    from PIL import Image

    img = Image.fromarray(getattr(skimage.data, name)())
    return np.asarray(img.resize((width, height), Image.BILINEAR))


def photo_crops(
    split: str, n_per_class: int, size: int = 32, seed: int = 0, cut: float = 0.6
) -> tuple[np.ndarray, np.ndarray]:
    """Random size×size RGB crops labelled by source photograph (PHOTOS). Train crops come from
    the left `cut` of each photo, val crops from the rest, so no val pixel was seen in train."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, name in enumerate(PHOTOS):
        src = photo(name)
        h, w, _ = src.shape
        edge = int(w * cut)
        lo, hi = (0, edge - size) if split == "train" else (edge, w - size)
        for _ in range(n_per_class):
            y0, x0 = rng.integers(0, h - size + 1), rng.integers(lo, hi + 1)
            images.append(src[y0 : y0 + size, x0 : x0 + size])
            labels.append(label)
    order = rng.permutation(len(labels))
    return np.stack(images)[order], np.asarray(labels, np.int64)[order]


SCENES = ("astronaut", "chelsea", "coffee", "rocket", "brick", "grass")


def _scene(name: str) -> np.ndarray:
    """A bundled scikit-image picture as (256, 384, 3) uint8; grayscale textures become RGB."""
    import skimage.data
    from PIL import Image

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.asarray(Image.fromarray(img).resize((384, 256), Image.BILINEAR))


def scene_crops(
    split: str, n_per_class: int, size: int = 32, seed: int = 0, classes: tuple = SCENES
) -> tuple[np.ndarray, np.ndarray]:
    """size×size RGB views of scikit-image pictures (SCENES, or `classes`) at random scale (a
    48–112 px window resized to size), labelled by picture. Train views come from the left 60 % of
    each picture, val views from the rest: the val split is new pixels of the same scenes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, name in enumerate(classes):
        src = _scene(name)
        h, w, _ = src.shape
        edge = int(w * 0.6)
        for _ in range(n_per_class):
            side = int(rng.integers(48, 113))
            lo, hi = (0, edge - side) if split == "train" else (edge, w - side)
            y0, x0 = rng.integers(0, h - side + 1), rng.integers(lo, max(lo, hi) + 1)
            view = Image.fromarray(src[y0 : y0 + side, x0 : x0 + side])
            images.append(np.asarray(view.resize((size, size), Image.BILINEAR)))
            labels.append(label)
    order = rng.permutation(len(labels))
    return np.stack(images)[order], np.asarray(labels, np.int64)[order]
