"""Shortcut learning, measured: object masks, context interventions, context probes, per-class
context statistics. Pure functions on tensors/arrays; the `shortcut_context` check wires them to a
case.

Vocabulary: the *object* is what the label is about (the case's `object_mask(split, index)` hook,
else the centre of the image); the *context* is every other pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

    from detective.core.case import Case


# --- where the object is ---------------------------------------------------------------------


def centre_mask(h: int, w: int, border_fraction: float) -> np.ndarray:
    """The object region when the case names none: everything but a border band."""
    import numpy as np

    b = max(1, round(min(h, w) * border_fraction))
    m = np.zeros((h, w), dtype=bool)
    m[b : h - b, b : w - b] = True
    return m


def object_masks(
    case: Case, split: str, indices: list[int], h: int, w: int, border_fraction: float
) -> tuple[np.ndarray, str]:
    """[N, H, W] bool masks (True = object) and where they came from ("hook" | "centre")."""
    import numpy as np
    from PIL import Image

    from detective.core.case import CaseError

    if not case.has("object_mask"):
        return np.broadcast_to(centre_mask(h, w, border_fraction), (len(indices), h, w)), "centre"
    out = np.zeros((len(indices), h, w), dtype=bool)
    for row, index in enumerate(indices):
        raw = case.call("object_mask", split, index)
        m = np.asarray(raw.detach().cpu() if hasattr(raw, "detach") else raw)
        m = np.squeeze(m)
        if m.ndim != 2:
            raise CaseError(
                f"object_mask({split!r}, {index}) returned shape {m.shape}; expected [H, W] "
                "(True or 1 on the object)"
            )
        m = m > 0.5 if m.dtype != bool else m
        if m.shape != (h, w):  # a mask at the raw image's resolution: resize to the tensor's
            pil = Image.fromarray(m.astype(np.uint8) * 255)
            m = np.asarray(pil.resize((w, h), Image.Resampling.NEAREST)) > 127
        out[row] = m
    return out, "hook"


# --- interventions on the context --------------------------------------------------------------


def fill_context(x: torch.Tensor, m: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Keep the object, replace the context by a constant per-channel value `fill` [C]."""
    keep = m[:, None].to(x.dtype)
    return x * keep + fill.view(1, -1, 1, 1) * (1 - keep)


def swap_context(x: torch.Tensor, m: torch.Tensor, donor: torch.Tensor) -> torch.Tensor:
    """Keep each image's object, paste it onto the donor image's context (same size)."""
    keep = m[:, None].to(x.dtype)
    return x * keep + donor * (1 - keep)


def context_only(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Hide the object: its pixels become the image's own mean context colour, so the context
    keeps everything it carries and the object nothing but its outline."""
    ctx = (~m)[:, None].to(x.dtype)
    mean = (x * ctx).sum((2, 3), keepdim=True) / ctx.sum((2, 3), keepdim=True).clamp_min(1)
    return x * ctx + mean * (1 - ctx)


def context_mean(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Per-channel mean of the context pixels over a whole sample: [C]."""
    ctx = (~m)[:, None].to(x.dtype)
    return (x * ctx).sum((0, 2, 3)) / ctx.sum((0, 2, 3)).clamp_min(1)


def pick_donors(labels: np.ndarray, donor_labels: np.ndarray, seed: int) -> np.ndarray:
    """For each label, the row of a donor of another class (class uniform among the others,
    then an image uniform within it); -1 where no other class exists."""
    import numpy as np

    rng = np.random.default_rng(seed)
    by_class = {int(c): np.flatnonzero(donor_labels == c) for c in np.unique(donor_labels)}
    out = np.full(len(labels), -1, dtype=np.int64)
    for i, y in enumerate(labels):
        others = [c for c in by_class if c != int(y)]
        if others:
            c = others[rng.integers(len(others))]
            out[i] = by_class[c][rng.integers(len(by_class[c]))]
    return out


def placebo_labels(labels: np.ndarray, classes: list[int], seed: int) -> np.ndarray:
    """A class drawn like a donor's class but never used: the chance level of "follows the
    donor" for the same predictions."""
    import numpy as np

    rng = np.random.default_rng(seed + 7919)
    out = np.full(len(labels), -1, dtype=np.int64)
    for i, y in enumerate(labels):
        others = [c for c in classes if c != int(y)]
        if others:
            out[i] = others[rng.integers(len(others))]
    return out


# --- paired statistics -------------------------------------------------------------------------


@dataclass(frozen=True)
class PairedChange:
    """A paired change of a 0/1 outcome over the same examples (before → after)."""

    n: int
    before: float  # rate before
    after: float  # rate after
    lost: int  # 1 → 0
    gained: int  # 0 → 1
    p_value: float  # exact McNemar (binomial on the discordant pairs), one-sided: it fell
    ci_low: float  # 95 % CI of before − after (paired)
    ci_high: float

    @property
    def drop(self) -> float:
        return self.before - self.after


def paired_change(before: np.ndarray, after: np.ndarray) -> PairedChange:
    """Exact McNemar test that the rate fell, and a paired normal CI of the fall."""
    import numpy as np

    from detective.analysis.paired import mcnemar_exact

    b, a = np.asarray(before, bool), np.asarray(after, bool)
    n = len(b)
    lost, gained = int((b & ~a).sum()), int((~b & a).sum())
    p = mcnemar_exact(lost, gained, "greater")
    d = b.astype(float) - a.astype(float)
    mean = float(d.mean()) if n else math.nan
    half = 1.96 * float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    return PairedChange(n, float(b.mean()) if n else math.nan, float(a.mean()) if n else math.nan,
                        lost, gained, p, mean - half, mean + half)


# --- probes ------------------------------------------------------------------------------------


def region_features(x: torch.Tensor, grid: int = 8) -> np.ndarray:
    """A fixed, model-free descriptor: the image pooled to a grid × grid layout per channel plus
    per-channel mean and std (colour, layout and texture energy in a few hundred numbers)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    with torch.no_grad():
        g = min(grid, x.shape[-1], x.shape[-2])
        pooled = F.adaptive_avg_pool2d(x.float(), g).flatten(1)
        stats = torch.cat([x.float().mean((2, 3)), x.float().std((2, 3))], 1)
        return torch.cat([pooled, stats], 1).cpu().numpy()


@dataclass(frozen=True)
class ProbeScore:
    """A linear probe on one region's features: cross-validated in train, fit on train and
    scored on val; chance = the majority class share of each split."""

    train_cv: float
    val: float
    train_chance: float
    val_chance: float
    train_recall: tuple[float, ...]  # per class (cross-validated), NaN when absent
    val_recall: tuple[float, ...]

    @property
    def gap(self) -> float:
        return self.train_cv - self.val


def linear_probe(
    f_train: np.ndarray, y_train: np.ndarray, f_val: np.ndarray, y_val: np.ndarray,
    num_classes: int, seed: int,
) -> ProbeScore | None:
    """scikit-learn LogisticRegression on standardized features; None when train has fewer than
    two classes or too few examples per class to cross-validate."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    counts = np.bincount(y_train, minlength=num_classes)
    present = counts[counts > 0]
    folds = int(min(5, present.min())) if len(present) else 0
    if len(present) < 2 or folds < 2 or len(y_val) == 0:
        return None

    def make() -> object:
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=400))

    with threadpool_limits(1):
        cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
        pred_cv = cross_val_predict(make(), f_train, y_train, cv=cv)
        model = make().fit(f_train, y_train)  # type: ignore[attr-defined]
        pred_val = model.predict(f_val)

    def recall(y: np.ndarray, p: np.ndarray) -> tuple[float, ...]:
        return tuple(float((p[y == c] == c).mean()) if (y == c).any() else math.nan
                     for c in range(num_classes))

    def chance(y: np.ndarray) -> float:
        return float(np.bincount(y, minlength=num_classes).max() / len(y))

    return ProbeScore(
        train_cv=float((pred_cv == y_train).mean()),
        val=float((pred_val == y_val).mean()),
        train_chance=chance(y_train),
        val_chance=chance(y_val),
        train_recall=recall(y_train, pred_cv),
        val_recall=recall(y_val, pred_val),
    )


# --- per-class context statistics ----------------------------------------------------------------


def channel_names(c: int) -> tuple[str, ...]:
    return ("red", "green", "blue") if c == 3 else ("gray",) if c == 1 else tuple(
        f"channel {i}" for i in range(c))


def context_properties(px: torch.Tensor, m: torch.Tensor) -> dict[str, np.ndarray]:
    """Per image, properties of the context pixels in pixel units: each channel's mean,
    brightness (mean over channels) and contrast (std of the brightness)."""
    import torch

    with torch.no_grad():
        ctx = (~m)[:, None].to(px.dtype)
        n = ctx.sum((2, 3)).clamp_min(1)
        means = (px * ctx).sum((2, 3)) / n  # [N, C]
        lum = px.mean(1, keepdim=True)
        lmean = (lum * ctx).sum((2, 3)) / n
        lvar = (((lum - lmean[..., None, None]) ** 2) * ctx).sum((2, 3)) / n
    out = {}
    names = channel_names(px.shape[1])
    if len(names) > 1:
        for i, name in enumerate(names):
            out[f"context {name}"] = means[:, i].cpu().numpy()
    out["context brightness"] = lmean[:, 0].cpu().numpy()
    out["context contrast"] = lvar[:, 0].sqrt().cpu().numpy()
    return out


@dataclass(frozen=True)
class ClassContextStat:
    """One property of the context, within one class, train vs val; `d_all` is the same
    comparison over all classes (what a marginal shift test sees)."""

    class_index: int
    prop: str
    train_mean: float
    val_mean: float
    d_class: float  # Cohen's d, train − val, within the class
    d_all: float


def cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    import numpy as np

    if len(a) < 2 or len(b) < 2:
        return math.nan
    pooled = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1))
                       / (len(a) + len(b) - 2))
    d = (float(np.mean(a)) - float(np.mean(b))) / max(pooled, 1e-3)
    return max(-99.0, min(99.0, d))


def conditional_stats(
    props_train: dict[str, np.ndarray], y_train: np.ndarray,
    props_val: dict[str, np.ndarray], y_val: np.ndarray, num_classes: int,
) -> list[ClassContextStat]:
    """Every (class, property) pair with both splits present, largest within-class effect
    first."""
    out = []
    for prop, tr in props_train.items():
        va = props_val[prop]
        d_all = cohens_d(tr, va)
        for c in range(num_classes):
            a, b = tr[y_train == c], va[y_val == c]
            if len(a) < 2 or len(b) < 2:
                continue
            out.append(ClassContextStat(c, prop, float(a.mean()), float(b.mean()),
                                        cohens_d(a, b), d_all))
    out.sort(key=lambda s: -abs(s.d_class) if not math.isnan(s.d_class) else 0.0)
    return out
