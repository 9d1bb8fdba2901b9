"""One augmentation at a time, and a cheap pixel probe to see what it does to the labels.

`isolate` builds the training transform with every random augmentation switched off except one,
which always fires (p=1), so its effect can be measured alone. `PixelProbe` is a linear
classifier (ridge, closed form: ~1 s where logistic regression takes tens of seconds on a
busy CPU) on per-image standardized thumbnails: trained on un-augmented images in seconds,
insensitive to brightness/contrast, good enough to notice a 6 that became a 9.
Import this module only inside functions.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from detective.analysis.augment import _centred, is_random

SIDE = 16


def isolate(transform: Any, keep: Any) -> Any:
    """`transform` with random parts replaced by their deterministic stand-in, except `keep`."""
    from torchvision import transforms as T  # noqa: N812

    inner = getattr(transform, "transforms", None)
    if not isinstance(inner, list | tuple) or is_random(transform):
        return _one(transform, keep)
    return T.Compose([isolate(t, keep) for t in inner])


def _one(t: Any, keep: Any) -> Any:
    if t is keep:
        if hasattr(t, "p"):
            t = copy.copy(t)
            t.p = 1.0  # measure the augmentation when it fires
        return t
    if not is_random(t):
        return t
    return _centred(t) or (lambda x: x)


def features(x: torch.Tensor) -> np.ndarray:
    """[B, C, H, W] → [B, C*SIDE*SIDE] per-image standardized thumbnails."""
    import torch.nn.functional as F  # noqa: N812

    with torch.no_grad():
        x = x.float()
        shrink = x.shape[-1] > SIDE or x.shape[-2] > SIDE
        t = F.interpolate(
            x, size=(SIDE, SIDE), mode="bilinear", antialias=shrink, align_corners=False
        ).flatten(1)
        t = (t - t.mean(1, keepdim=True)) / t.std(1, keepdim=True).clamp_min(1e-6)
    return t.cpu().numpy()


class PixelProbe:
    def __init__(self, seed: int = 0) -> None:
        from sklearn.linear_model import RidgeClassifier

        del seed  # closed form: deterministic
        self.model = RidgeClassifier(alpha=1.0)

    def fit(self, x: np.ndarray, y: np.ndarray) -> PixelProbe:
        with _one_thread():
            self.model.fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        with _one_thread():
            return self.model.predict(x)


def _one_thread():  # noqa: ANN202
    """BLAS on one thread: these solves are tiny, and on a busy shared CPU a threaded BLAS
    spins for ~1 s per 256×256 solve (measured: 1.07 s threaded vs 0.07 s single)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def cv_accuracy(x: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """3-fold cross-validated probe accuracy on one split (how learnable its labels are)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    counts = np.bincount(y)
    folds = int(min(3, counts[counts > 0].min())) if len(y) else 0
    if folds < 2:
        return float("nan")
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with _one_thread():
        return float(cross_val_score(PixelProbe(seed).model, x, y, cv=cv).mean())
