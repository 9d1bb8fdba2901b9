"""Is the eval split representative of train? Class balance (chi-square) and image properties
(two-sample KS), on raw images when the case has them so that preprocessing differences (a
parity bug) are not mistaken for a data shift."""

from __future__ import annotations

from dataclasses import dataclass

from detective.core.findings import (
    Finding,
    Metric,
    Strength,
    Table,
    Verdict,
    refutes,
    supports,
)
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register


@dataclass(frozen=True)
class ShiftThresholds:
    alpha: float = 0.01
    strong_alpha: float = 1e-3
    strong_tvd: float = 0.15  # total variation distance between class proportions
    moderate_tvd: float = 0.08
    strong_ks: float = 0.3
    moderate_ks: float = 0.15


@dataclass(frozen=True)
class ShiftSettings:
    """How much integrity_representativeness measures (read by measure only)."""

    sample: int = 200  # raw images per split


@dataclass(frozen=True)
class PropertyShift:
    name: str
    train_median: float
    eval_median: float
    ks: float
    p_value: float  # Bonferroni-adjusted over properties


@dataclass(frozen=True)
class ShiftMeasurement:
    split: str
    basis: str  # "raw images" | "model inputs"
    train_n: int
    eval_n: int
    class_tvd: float
    class_p: float
    class_rows: tuple[tuple[str, float, float], ...]  # class, train share, eval share
    properties: tuple[PropertyShift, ...]


def _raw_props(ctx, split: str, indices: list[int], progress) -> dict[str, list[float]]:
    """Properties of raw images in [0, 1] units, batched by image shape."""
    import numpy as np
    import torch

    from detective.analysis.imageprops import PROPERTIES, raw_size, tensor_properties
    from detective.analysis.rawimages import to_unit_tensor

    raw = ctx.raw_dataset(split)
    out: dict[str, list[float]] = {p: [] for p in (*PROPERTIES, "width", "height", "aspect")}
    groups: dict[tuple[int, ...], list] = {}

    def flush(shape: tuple[int, ...]) -> None:
        batch = groups.pop(shape, [])
        if batch:
            props = tensor_properties(torch.stack(batch))
            for p, v in props.as_dict().items():
                out[p].extend(float(x) for x in v)

    for n, i in enumerate(indices):
        if n % 32 == 0:
            progress.update(n, len(indices))
        try:
            image = raw[i][0]
            t = to_unit_tensor(image)
        except Exception:  # data-health checks report unreadable items
            continue
        groups.setdefault(tuple(t.shape), []).append(t)
        if len(groups[tuple(t.shape)]) >= 64:
            flush(tuple(t.shape))
        w, h = raw_size(image)
        out["width"].append(float(w))
        out["height"].append(float(h))
        out["aspect"].append(float(w / h) if h else float(np.nan))
    for shape in list(groups):
        flush(shape)
    return out


@register
class EvalRepresentativeness(Check[ShiftMeasurement]):
    id = "eval_representativeness"
    title = "Eval split representative of train"
    stage = Stage.EVALUATION_INTEGRITY
    description = (
        "Compares the eval split with train: class proportions (chi-square, total variation) and "
        "image brightness, contrast, sharpness, saturation and size (two-sample KS), on raw "
        "images when available."
    )
    hypotheses = ("distribution_shift",)
    measurement_type = ShiftMeasurement
    thresholds_type = ShiftThresholds
    settings_type = ShiftSettings

    def measure(self, ctx, progress) -> ShiftMeasurement:
        import numpy as np
        from scipy.stats import chisquare, ks_2samp

        from detective.analysis.erroranalysis import eval_collection, eval_split, train_collection

        progress.update(0.0)
        split = eval_split(ctx)
        ev = eval_collection(ctx, progress.span(0.0, 0.3))
        tr = train_collection(ctx, progress.span(0.3, 0.5))
        k = ctx.case.num_classes
        tr_counts = np.bincount(tr.label, minlength=k).astype(float)
        ev_counts = np.bincount(ev.label, minlength=k).astype(float)
        tr_share = (tr_counts + 0.5) / (tr_counts + 0.5).sum()
        ev_share = ev_counts / max(ev_counts.sum(), 1)
        tvd = float(0.5 * np.abs(tr_share - ev_share).sum())
        class_p = (
            float(chisquare(ev_counts, tr_share * ev_counts.sum()).pvalue)
            if ev_counts.sum() and k > 1
            else 1.0
        )
        basis = "model inputs"
        if ctx.case.has("raw_datasets"):
            n = min(ctx.options.sample, self.settings.sample)
            a = _raw_props(ctx, "train", ctx.sample_indices("train", n), progress.span(0.5, 0.75))
            b = _raw_props(ctx, split, ctx.sample_indices(split, n), progress.span(0.75, 1.0))
            basis = "raw images"
        else:
            a = {p: v.tolist() for p, v in tr.properties.items()}
            b = {p: v.tolist() for p, v in ev.properties.items()}
        shifts = []
        names = [p for p in a if p in b]
        for p in names:
            x = np.asarray(a[p], float)
            y = np.asarray(b[p], float)
            x, y = x[np.isfinite(x)], y[np.isfinite(y)]
            if (
                len(x) < 10
                or len(y) < 10
                or (x.std() < 1e-9 and y.std() < 1e-9 and abs(x.mean() - y.mean()) < 1e-9)
            ):
                continue
            res = ks_2samp(x, y)
            shifts.append(
                PropertyShift(
                    p,
                    float(np.median(x)),
                    float(np.median(y)),
                    float(res.statistic),
                    float(min(1.0, res.pvalue * max(len(names), 1))),
                )
            )
        progress.update(1.0)
        return ShiftMeasurement(
            split=split,
            basis=basis,
            train_n=len(tr.label) if basis == "model inputs" else len(a.get("brightness", [])),
            eval_n=ev.n if basis == "model inputs" else len(b.get("brightness", [])),
            class_tvd=tvd,
            class_p=class_p,
            class_rows=tuple(
                (ctx.case.classes[c], round(float(tr_share[c]), 4), round(float(ev_share[c]), 4))
                for c in range(k)
            ),
            properties=tuple(shifts),
        )

    def judge(self, m: ShiftMeasurement) -> Finding:
        th = self.thresholds
        strong, moderate = [], []
        if m.class_p < th.strong_alpha and m.class_tvd >= th.strong_tvd:
            strong.append(f"class proportions differ (total variation {m.class_tvd:.2f})")
        elif m.class_p < th.alpha and m.class_tvd >= th.moderate_tvd:
            moderate.append(f"class proportions differ (total variation {m.class_tvd:.2f})")
        for s in m.properties:
            what = (
                f"{s.name}: median {s.train_median:.3g} in train vs {s.eval_median:.3g} in "
                f"{m.split} (KS {s.ks:.2f})"
            )
            if s.p_value < th.strong_alpha and s.ks >= th.strong_ks:
                strong.append(what)
            elif s.p_value < th.alpha and s.ks >= th.moderate_ks:
                moderate.append(what)
        metrics = (
            Metric("class proportions: total variation", m.class_tvd, key="class_tvd"),
            Metric("class proportions: chi-square p", m.class_p),
            Metric(
                "largest property KS",
                max((s.ks for s in m.properties), default=0.0),
                key="max_property_ks",
            ),
        )
        tables = (
            Table(
                "class proportions", ("class", "train", m.split), m.class_rows, "class_proportions"
            ),
            Table(
                f"image properties ({m.basis}; train n={m.train_n}, {m.split} n={m.eval_n})",
                ("property", "train median", f"{m.split} median", "KS", "p (adjusted)"),
                tuple(
                    (
                        s.name,
                        round(s.train_median, 4),
                        round(s.eval_median, 4),
                        round(s.ks, 3),
                        float(f"{s.p_value:.3g}"),
                    )
                    for s in m.properties
                ),
            ),
        )
        notes = (
            (
                "Compared on model inputs (no raw_datasets): a preprocessing difference between "
                "train and eval shows up here too.",
            )
            if m.basis == "model inputs"
            else ()
        )
        if strong or moderate:
            what = "; ".join(strong + moderate)
            effects = (
                supports(
                    "distribution_shift", Strength.STRONG if strong else Strength.MODERATE, what
                ),
            )
            return self.finding(
                f"The {m.split} split is not representative of train: {what}.",
                metrics=metrics,
                tables=tables,
                effects=effects,
                notes=notes,
                next_step="Check how the splits were made (time, source, device); evaluate "
                "per slice (error_slices) and collect training data like the eval data.",
            )
        return Finding(
            self.id,
            Verdict.PASS,
            f"The {m.split} split looks like train: class proportions (total variation "
            f"{m.class_tvd:.2f}) and image properties ({m.basis}) show no significant shift.",
            metrics=metrics,
            tables=tables,
            notes=notes,
            effects=(
                refutes(
                    "distribution_shift",
                    Strength.WEAK,
                    "class balance and image properties match train",
                ),
            ),
        )
