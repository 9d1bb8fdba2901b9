"""Planted-bug variants of the clean digits case for the error-analysis and integrity tests.

They reuse the clean case's trained weights (same cache key), so no test trains a model beyond
the one clean model the suite already trains once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from detective.casekit.demo import kit
from detective.core.case import load_case

CLEAN_PATH = Path(__file__).parent / "digits_clean.py"
_clean = None


def clean():
    """The clean case's module (loaded once)."""
    global _clean
    if _clean is None:
        _clean = load_case(CLEAN_PATH).module
    return _clean


def flipped_val(rate: float = 0.10, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Val images, labels with `rate` of them flipped to another class, and the flipped indices."""
    x, y = kit.digits_splits()["val"]
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(y), int(round(rate * len(y))), replace=False))
    noisy = y.copy()
    noisy[idx] = (y[idx] + rng.integers(1, 10, len(idx))) % 10
    return x, noisy, idx


def dark_val(share: float = 0.25, factor: float = 0.4, seed: int = 2):
    """Val images with `share` of them darkened by `factor`; returns images, labels, dark ids."""
    x, y = kit.digits_splits()["val"]
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(y), int(round(share * len(y))), replace=False))
    x = x.copy()
    x[idx] = (x[idx].astype(float) * factor).round().astype(np.uint8)
    return x, y, idx


def subset(x: np.ndarray, y: np.ndarray, keep_per_class: dict[int, int]):
    """Keep at most keep_per_class[c] examples of class c (all of the others)."""
    rows = []
    for c in range(10):
        rows.extend(np.flatnonzero(y == c)[: keep_per_class.get(c, len(y))].tolist())
    rows = np.sort(np.array(rows))
    return x[rows], y[rows]


def splits_with_val(x: np.ndarray, y: np.ndarray, raw: bool = False) -> dict:
    tf = clean().transforms()
    s = kit.digits_splits()
    if raw:
        return {"train": kit.ArrayImages(*s["train"]), "val": kit.ArrayImages(x, y)}
    return {
        "train": kit.ArrayImages(*s["train"], tf["train"]),
        "val": kit.ArrayImages(x, y, tf["eval"]),
    }


class Scaled(nn.Module):
    """The clean model with its logits multiplied (over/under-confidence) and shifted per class."""

    def __init__(self, base: nn.Module, scale: float = 1.0, shift: dict[int, float] | None = None):
        super().__init__()
        self.base, self.scale = base, scale
        bias = torch.zeros(10)
        for c, v in (shift or {}).items():
            bias[c] = v
        self.register_buffer("bias", bias)
        self.head = self.base.head  # the last Linear stays the penultimate hook point

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) * self.scale + self.bias


class NoisyOnDark(nn.Module):
    """A model that errs on `dark_rate` of dark images and `rate` of the others (deterministic:
    the draw is keyed on the image's pixels), i.e. it fails 3x more on dark images."""

    def __init__(
        self, base: nn.Module, rate: float = 0.1, dark_rate: float = 0.3, threshold: float = 0.2
    ) -> None:
        super().__init__()
        self.base, self.rate, self.dark_rate, self.threshold = base, rate, dark_rate, threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.base(x)
        norm = clean().NORMALIZATION
        brightness = (x * norm["std"][0] + norm["mean"][0]).mean((1, 2, 3))
        key = (x.flatten(1).sum(1) * 1000).round().long().abs()
        u = ((key * 2654435761) % 10007).float() / 10007
        rate = torch.where(brightness < self.threshold, self.dark_rate, self.rate)
        flip = u < rate
        return torch.where(flip.view(-1, 1), logits.roll(1, dims=1), logits)


class DropoutHead(nn.Module):
    """The clean model with dropout before its head (eval() works normally)."""

    def __init__(self, base: nn.Module, p: float = 0.5) -> None:
        super().__init__()
        self.features, self.head = base.features, base.head
        self.dropout = nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(torch.flatten(self.features(x), 1)))


class StuckDropout(nn.Module):
    """The clean model with dropout before its head, and a train() that ignores mode=False:
    .eval() leaves it (and the batch-norm layers) in training mode."""

    def __init__(self, base: nn.Module, p: float = 0.5) -> None:
        super().__init__()
        self.features, self.head = base.features, base.head
        self.dropout = nn.Dropout(p)

    def train(self, mode: bool = True) -> StuckDropout:
        return super().train(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(torch.flatten(self.features(x), 1)))
