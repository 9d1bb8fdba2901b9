"""Compare two models (before/after a fix, two architectures) on the same val set.

Each case is evaluated through its own val pipeline (a fix may change the transform), on the same
items: the val labels must agree item by item. The accuracy delta gets an exact McNemar test
(a binomial test on the discordant pairs), so noise is called noise; per-class and per-slice
(brightness/contrast terciles) deltas say where it moved; galleries show what the change fixed
and what it newly broke.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detective.analysis.paired import mcnemar_exact


class CompareError(Exception):
    """The two cases cannot be compared; the message says why."""


@dataclass(frozen=True)
class GroupDelta:
    group: str
    n: int
    acc_a: float
    acc_b: float

    @property
    def delta(self) -> float:
        return self.acc_b - self.acc_a


@dataclass(frozen=True)
class Comparison:
    n: int
    acc_a: float
    acc_b: float
    fixed: int  # A wrong, B right
    broken: int  # A right, B wrong
    p_value: float  # exact McNemar (two-sided binomial test on the discordant pairs)
    per_class: tuple[GroupDelta, ...]
    per_slice: tuple[GroupDelta, ...]
    fixed_indices: tuple[int, ...]
    broken_indices: tuple[int, ...]
    galleries: tuple[str, ...]  # PNG paths written

    @property
    def delta(self) -> float:
        return self.acc_b - self.acc_a

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05

    @property
    def summary(self) -> str:
        call = "a real difference" if self.significant else "within noise"
        return (
            f"accuracy {self.acc_a:.2%} → {self.acc_b:.2%} (Δ {self.delta:+.2%}) on {self.n} val "
            f"images: {self.fixed} fixed, {self.broken} newly broken; exact McNemar p = "
            f"{self.p_value:.3g}: {call}."
        )


def _predict(ctx: Any, indices: list[int]) -> tuple[Any, Any, Any, list[int]]:
    """(predictions, labels, tensors, kept indices) of a case's model on val `indices`."""
    import torch

    x, y, kept = ctx.tensors("val", indices)
    model = ctx.model()
    preds = []
    with torch.no_grad():
        for i in range(0, len(y), 256):
            preds.append(model(x[i : i + 256]).argmax(1))
    return torch.cat(preds).cpu().numpy(), y.cpu().numpy(), x, kept


def compare_contexts(ctx_a: Any, ctx_b: Any, out_dir: Path | None = None) -> Comparison:
    import numpy as np

    from detective.analysis.imageprops import tensor_properties

    n_a, n_b = len(ctx_a.dataset("val")), len(ctx_b.dataset("val"))
    if n_a != n_b:
        raise CompareError(f"the val sets differ in size ({n_a} vs {n_b}): not the same items")
    indices = ctx_a.sample_indices("val")
    pa, ya, xa, kept_a = _predict(ctx_a, indices)
    pb, yb, _, kept_b = _predict(ctx_b, indices)
    common = sorted(set(kept_a) & set(kept_b))
    if not common:
        raise CompareError("no val item is usable in both cases")
    ra = {d: i for i, d in enumerate(kept_a)}
    rb = {d: i for i, d in enumerate(kept_b)}
    ia = np.array([ra[d] for d in common])
    ib = np.array([rb[d] for d in common])
    if not np.array_equal(ya[ia], yb[ib]):
        bad = int((ya[ia] != yb[ib]).sum())
        raise CompareError(f"{bad} val labels differ between the cases: not the same val set")
    y = ya[ia]
    ca, cb = pa[ia] == y, pb[ib] == y
    fixed = np.flatnonzero(~ca & cb)
    broken = np.flatnonzero(ca & ~cb)
    classes = ctx_a.case.classes
    per_class = tuple(
        GroupDelta(str(classes[c]), int((y == c).sum()), float(ca[y == c].mean()),
                   float(cb[y == c].mean()))
        for c in np.unique(y)
    )
    props = tensor_properties(xa[ia], ctx_a.case.normalization).as_dict()
    per_slice = []
    for name in ("brightness", "contrast"):
        v = props[name]
        if not np.isfinite(v).all() or np.ptp(v) == 0:
            continue
        cuts = np.quantile(v, [1 / 3, 2 / 3])
        bins = np.digitize(v, cuts)
        for b, label in enumerate(("low", "mid", "high")):
            m = bins == b
            if m.any():
                per_slice.append(
                    GroupDelta(f"{name} {label}", int(m.sum()), float(ca[m].mean()),
                               float(cb[m].mean()))
                )
    common_arr = np.array(common)
    galleries: list[str] = []
    if out_dir is not None:
        from detective.analysis.pngplots import image_grid
        from detective.analysis.rawimages import display_images

        out_dir.mkdir(parents=True, exist_ok=True)
        for name, rows in (("fixed", fixed), ("newly_broken", broken)):
            if not len(rows):
                continue
            rows = rows[:24]
            ids = [int(common_arr[r]) for r in rows]
            disp = display_images(ctx_a, "val", ids, xa[ia[rows]])
            captions = [
                f"#{ids[j]} {classes[y[r]]}\nA:{classes[pa[ia[r]]]} B:{classes[pb[ib[r]]]}"[:30]
                for j, r in enumerate(rows)
            ]
            path = out_dir / f"compare-{name}.png"
            image_grid(disp, captions).save(path)
            galleries.append(str(path))
    return Comparison(
        n=len(y),
        acc_a=float(ca.mean()),
        acc_b=float(cb.mean()),
        fixed=len(fixed),
        broken=len(broken),
        p_value=mcnemar_exact(len(fixed), len(broken)),
        per_class=per_class,
        per_slice=tuple(per_slice),
        fixed_indices=tuple(int(common_arr[r]) for r in fixed),
        broken_indices=tuple(int(common_arr[r]) for r in broken),
        galleries=tuple(galleries),
    )


def compare_cases(
    case_a: str | Path,
    case_b: str | Path,
    *,
    sample: int = 2000,
    device: str = "auto",
    seed: int = 0,
    out_dir: Path | None = None,
) -> Comparison:
    """Load both case files and compare their models on the same val items."""
    import tempfile

    from detective.core.case import load_case
    from detective.core.context import RunContext, RunOptions

    options = RunOptions(device=device, sample=sample, seed=seed)
    scratch = Path(tempfile.mkdtemp(prefix="detective-compare-"))
    ctxs = [
        RunContext(load_case(p), options, scratch / f"{k}-artifacts", scratch / f"{k}-cache")
        for k, p in (("a", case_a), ("b", case_b))
    ]
    if sample <= 0:
        raise CompareError("--sample must be positive")
    return compare_contexts(ctxs[0], ctxs[1], out_dir)
