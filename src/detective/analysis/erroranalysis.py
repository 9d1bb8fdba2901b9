"""Pure analyses of a Collection shared by the error-analysis checks and the error budget.

Everything here works on numpy arrays from `detective.analysis.collect` (no model, no torch), so the
checks stay thin and the error budget can recompute what an earlier check would have found
when it runs alone (`--only error_budget`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from detective.analysis.collect import Collection
    from detective.core.context import RunContext
    from detective.core.progress import Progress

TRAIN_SAMPLE = 300  # train examples collected for label issues and the train-vs-eval comparison


def eval_split(ctx: RunContext) -> str:
    """The split the user evaluates on (EVAL = {"split": ...}), falling back to val."""
    split = ctx.case.eval_settings.split
    return split if ctx.has_split(split) else "val"


def eval_collection(ctx: RunContext, progress: Progress | None = None) -> Collection:
    from detective.analysis.collect import collect

    return collect(ctx, eval_split(ctx), progress)


def train_collection(ctx: RunContext, progress: Progress | None = None) -> Collection:
    """A bounded, fixed-seed sample of train (its transform includes augmentation, if any)."""
    from detective.analysis.collect import collect

    n = min(ctx.options.sample, TRAIN_SAMPLE)
    return collect(ctx, "train", progress, indices=ctx.sample_indices("train", n))


# --- per-class -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassRow:
    cls: int
    name: str
    support: int
    predicted: int
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class Confusion:
    true: int
    pred: int
    count: int
    share_of_errors: float


@dataclass(frozen=True)
class PerClass:
    n: int
    errors: int
    accuracy: float
    balanced_accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    rows: tuple[ClassRow, ...]
    matrix: tuple[tuple[int, ...], ...]
    top_confusions: tuple[Confusion, ...]


def per_class(col: Collection, top: int = 10) -> PerClass:
    import numpy as np
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    k = col.num_classes
    labels = list(range(k))
    y, p = col.label, col.pred
    cm = confusion_matrix(y, p, labels=labels) if col.n else np.zeros((k, k), int)
    prec, rec, f1, sup = (
        precision_recall_fscore_support(y, p, labels=labels, zero_division=0)
        if col.n
        else (np.zeros(k),) * 4
    )
    present = sup > 0
    rows = tuple(
        ClassRow(
            c,
            col.classes[c],
            int(sup[c]),
            int(cm[:, c].sum()),
            float(prec[c]),
            float(rec[c]),
            float(f1[c]),
        )
        for c in labels
    )
    errors = int(col.n - np.trace(cm))
    off = [(int(cm[i, j]), i, j) for i in labels for j in labels if i != j and cm[i, j] > 0]
    off.sort(key=lambda t: (-t[0], t[1], t[2]))
    confusions = tuple(Confusion(i, j, c, c / errors if errors else 0.0) for c, i, j in off[:top])
    return PerClass(
        n=col.n,
        errors=errors,
        accuracy=float(np.trace(cm) / col.n) if col.n else 0.0,
        balanced_accuracy=float(rec[present].mean()) if present.any() else 0.0,
        macro_precision=float(prec[present].mean()) if present.any() else 0.0,
        macro_recall=float(rec[present].mean()) if present.any() else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        rows=rows,
        matrix=tuple(tuple(int(v) for v in r) for r in cm),
        top_confusions=confusions,
    )


# --- slices ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SliceDef:
    """A slice of the eval rows: a true class, or a property value range [lo, hi)."""

    kind: str  # "class" | "property"
    feature: str  # class name, or property name
    cls: int = -1
    lo: float = -math.inf
    hi: float = math.inf

    @property
    def label(self) -> str:
        if self.kind == "class":
            return f"class {self.feature}"
        if self.lo == -math.inf:
            return f"{self.feature} < {self.hi:.3g}"
        if self.hi == math.inf:
            return f"{self.feature} ≥ {self.lo:.3g}"
        return f"{self.feature} in [{self.lo:.3g}, {self.hi:.3g})"

    def mask(self, col: Collection) -> np.ndarray:
        if self.kind == "class":
            return col.label == self.cls
        v = col.properties[self.feature]
        return (v >= self.lo) & (v < self.hi)


@dataclass(frozen=True)
class SliceStat:
    slice: SliceDef
    size: int
    errors: int
    error_rate: float
    rest_rate: float
    ratio: float  # error_rate / rest_rate (rest floored at half an error)
    p_value: float  # one-sided Fisher exact, Bonferroni-adjusted over all slices tested
    share_of_errors: float
    excess_errors: float  # errors above what the rest's rate predicts: what fixing it removes
    # For a class slice whose errors mostly go to one other class that errs back into it: that
    # class's name. Such a slice is a confusable pair (often the task's own ceiling), not a
    # slice of data the model fails on.
    confused_with: str = ""


def candidate_slices(col: Collection, bins: int = 5) -> list[SliceDef]:
    """Each true class, and quantile bins of each image property that varies."""
    import numpy as np

    out = [SliceDef("class", col.classes[c], cls=c) for c in range(col.num_classes)]
    for name in sorted(col.properties):
        v = col.properties[name]
        v = v[np.isfinite(v)]
        if len(v) < 2 * bins or float(v.std()) < 1e-6:
            continue
        edges = np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1]))
        bounds = [-math.inf, *[float(e) for e in edges], math.inf]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            out.append(SliceDef("property", name, lo=lo, hi=hi))
    return out


def slice_stats(col: Collection, slices: list[SliceDef]) -> list[SliceStat]:
    """Error rate of each slice vs the rest, with a one-sided Fisher exact test."""
    from scipy.stats import fisher_exact

    wrong = ~col.correct
    total_errors = int(wrong.sum())
    out = []
    for s in slices:
        m = s.mask(col)
        size = int(m.sum())
        if size == 0 or size == col.n:
            continue
        e = int(wrong[m].sum())
        rest_n, rest_e = col.n - size, total_errors - e
        rest_rate = rest_e / rest_n
        _, p = fisher_exact([[e, size - e], [rest_e, rest_n - rest_e]], alternative="greater")
        floor = max(rest_rate, 0.5 / rest_n)
        out.append(
            SliceStat(
                slice=s,
                size=size,
                errors=e,
                error_rate=e / size,
                rest_rate=rest_rate,
                ratio=(e / size) / floor,
                p_value=float(min(1.0, p * len(slices))),
                share_of_errors=e / total_errors if total_errors else 0.0,
                excess_errors=max(0.0, e - size * rest_rate),
                confused_with=_mutual_partner(col, s.cls, slices) if s.kind == "class" else "",
            )
        )
    out.sort(key=lambda s: (-s.errors, s.p_value))
    return out


def _mutual_partner(col: Collection, cls: int, slices: list[SliceDef], share: float = 0.7) -> str:
    """The class that takes at least `share` of class `cls`'s errors and sends at least half of
    its own errors back to `cls`; '' when there is none."""
    import numpy as np

    pred, label = col.pred, col.label
    mine = (label == cls) & (pred != cls)
    if mine.sum() == 0:
        return ""
    values, counts = np.unique(pred[mine], return_counts=True)
    other = int(values[counts.argmax()])
    if counts.max() / mine.sum() < share:
        return ""
    theirs = (label == other) & (pred != other)
    if theirs.sum() == 0 or (pred[theirs] == cls).mean() < 0.5:
        return ""
    names = {s.cls: s.feature for s in slices if s.kind == "class"}
    return names.get(other, str(other))


def significant(
    stats: list[SliceStat], alpha: float, min_size: int, min_errors: int, min_ratio: float
) -> list[SliceStat]:
    return [
        s
        for s in stats
        if s.p_value < alpha
        and s.size >= min_size
        and s.errors >= min_errors
        and s.ratio >= min_ratio
    ]


# --- calibration -----------------------------------------------------------------------------


def equal_mass_bins(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 15
) -> list[tuple[float, float, int]]:
    """(mean confidence, accuracy, count) per bin of equal count, by confidence."""
    import numpy as np

    if len(confidence) == 0:
        return []
    order = np.argsort(confidence, kind="stable")
    out = []
    for part in np.array_split(order, min(bins, len(order))):
        if len(part):
            out.append(
                (float(confidence[part].mean()), float(correct[part].mean()), int(len(part)))
            )
    return out


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error with equal-mass bins."""
    parts = equal_mass_bins(confidence, correct, bins)
    n = sum(c for _, _, c in parts)
    return sum(c * abs(conf - acc) for conf, acc, c in parts) / n if n else 0.0


def fit_temperature(log_probs: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising the NLL of softmax(log_probs / T) (log-probs = logits + row constant)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        return temperature_nll(log_probs, labels, math.exp(log_t))

    res = minimize_scalar(nll, bounds=(-3.0, 4.0), method="bounded")
    return float(math.exp(res.x))


def scaled_log_probs(log_probs: np.ndarray, t: float) -> np.ndarray:
    from scipy.special import log_softmax

    return log_softmax(log_probs.astype("float64") / t, axis=1)


def temperature_nll(log_probs: np.ndarray, labels: np.ndarray, t: float) -> float:
    import numpy as np

    if len(labels) == 0:
        return 0.0
    lp = scaled_log_probs(log_probs, t)
    return float(-lp[np.arange(len(labels)), labels].mean())
