"""Data health: corrupt or odd inputs, class counts and imbalance, and train/val shift.

Streams a bounded sample of each split through the case's datasets (items that raise, hold
NaN/Inf or have the wrong shape are recorded by `ctx.batches`) and, when raw images exist,
decodes them fully (truncated files raise) and records their mode (CMYK, 16-bit, grey in an RGB
set). Shift between train and val is tested, not eyeballed: chi-square on class counts, and a
two-sample Kolmogorov–Smirnov test per image property (brightness, contrast, sharpness,
saturation, size, aspect) with a Bonferroni correction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detective.core.budget import READ_OPS, CaseSize, Cost, Knob
from detective.core.findings import (
    Concern,
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

#: Modes that are odd in any image set: what most loaders silently mangle.
ALWAYS_ODD = ("CMYK", "I;16", "I;16B", "I;16L", "I", "F", "array uint16")


@dataclass(frozen=True)
class HealthThresholds:
    corrupt_share: float = 0.01  # bad items (of the sample) an expert must fix before training
    blank_count: int = 3  # blank inputs that make a pattern (one can be a real empty scan)
    imbalance_moderate: float = 3.0  # largest / smallest class count
    imbalance_strong: float = 10.0
    alpha: float = 1e-3  # significance, Bonferroni-corrected over the properties tested
    class_shift_strong: float = 0.15  # total variation distance between class distributions
    class_shift_moderate: float = 0.05
    ks_strong: float = 0.25  # KS statistic D (the largest CDF gap)
    ks_moderate: float = 0.1


@dataclass(frozen=True)
class HealthSettings:
    """How much data_health reads (read by measure only)."""

    items: int = 0  # items sampled per split; 0: --sample (--budget may lower it)


def _items(st: HealthSettings, sample: int) -> int:
    return st.items or sample


@dataclass(frozen=True)
class BadItem:
    split: str
    index: int
    reason: str


@dataclass(frozen=True)
class SplitHealth:
    split: str
    size: int
    sampled: int
    counts: tuple[int, ...]  # per class
    counts_from: str  # "labels attribute (whole split)" or "sample"
    kinds: tuple[tuple[str, int], ...]  # raw image mode → count in the sample
    # Inputs (as the model gets them) whose every channel is one constant: a decoder's fallback
    # image. They load, so nothing else flags them, but they carry a label and no content.
    blank: int = 0
    blank_examples: tuple[int, ...] = ()


@dataclass(frozen=True)
class PropertyShift:
    name: str
    train_median: float
    val_median: float
    statistic: float  # KS D
    p_value: float


@dataclass(frozen=True)
class HealthMeasurement:
    classes: tuple[str, ...]
    splits: tuple[SplitHealth, ...]
    bad: tuple[BadItem, ...]  # unreadable / truncated / NaN / wrong shape / label out of range
    odd: tuple[BadItem, ...]  # readable, but an odd mode for this image set
    class_chi2_p: float
    shifts: tuple[PropertyShift, ...]
    properties_from: str  # "raw images" or "model inputs"


@register
class DataHealth(Check[HealthMeasurement]):
    id = "data_health"
    title = "Data health: corrupt inputs, imbalance, shift"
    stage = Stage.PIPELINE
    description = (
        "Unreadable, truncated, odd-mode or NaN/Inf inputs by split and index; class counts and "
        "the imbalance ratio; train-vs-val shift in class balance (chi-square) and image "
        "properties (Kolmogorov–Smirnov)."
    )
    needs = ("model", "datasets")
    hypotheses = ("corrupt_inputs", "class_imbalance", "distribution_shift")
    settings_type = HealthSettings
    # Floor: 500 items per split still give a 1 % corrupt share five items and the shift tests
    # their power for the shifts they are strong on (see the tests).
    shrinkable = (
        Knob("items", 500, effective=lambda v, s: min(
            max(s.train_n, s.val_n, s.test_n), _items(HealthSettings(items=v), s.sample))),
    )  # fmt: skip

    def cost(self, size: CaseSize) -> Cost:
        """Each split's sample read through the case's dataset and, with raw_datasets(),
        decoded raw once more (planned as if present)."""
        n = _items(self.settings, size.sample)
        reads = sum(min(n, k) for k in (size.train_n, size.val_n, size.test_n))
        return Cost(host_ops=2 * reads * READ_OPS)
    measurement_type = HealthMeasurement
    thresholds_type = HealthThresholds

    def measure(self, ctx, progress) -> HealthMeasurement:
        import numpy as np
        from scipy import stats

        from detective.analysis.imageprops import blank_inputs, tensor_properties

        use_raw = ctx.case.has("raw_datasets")
        k = ctx.case.num_classes
        splits, bad, odd = [], [], []
        props: dict[str, dict[str, list[float]]] = {}
        kind_by_split: dict[str, dict[int, str]] = {}  # split → index → raw image mode
        names = [s for s in ("train", "val", "test") if ctx.has_split(s)]
        for n, split in enumerate(names):
            span = progress.span(n / len(names), (n + 1) / len(names))
            indices = ctx.sample_indices(split, _items(self.settings, ctx.options.sample))
            sample_counts = np.zeros(k, dtype=np.int64)
            blank: list[int] = []
            values = props.setdefault(split, {})
            inputs = span.span(0, 0.5 if use_raw else 1.0)
            for batch in ctx.batches(split, indices, progress=inputs):
                sample_counts += np.bincount(batch.y.cpu().numpy(), minlength=k)[:k]
                flat = blank_inputs(batch.x)
                blank.extend(int(i) for i in batch.indices.cpu().numpy()[flat])
                if not use_raw:
                    for name, v in (
                        tensor_properties(batch.x, ctx.case.normalization).as_dict().items()
                    ):
                        values.setdefault(name, []).extend(v.tolist())
            wanted = set(indices)
            bad.extend(
                BadItem(split, i, why)
                for i, why in sorted(ctx.item_problems.get(split, {}).items())
                if i in wanted
            )
            kinds: dict[str, int] = {}
            kind_by_split[split] = {}
            if use_raw:
                kinds = _raw_pass(
                    ctx, split, indices, values, bad, kind_by_split[split], span.span(0.5, 1.0)
                )
            full = _labels_attribute(ctx.dataset(split), k)
            splits.append(
                SplitHealth(
                    split,
                    len(ctx.dataset(split)),
                    len(indices),
                    tuple(int(c) for c in (full if full is not None else sample_counts)),
                    "labels attribute (whole split)" if full is not None else "sample",
                    tuple(sorted(kinds.items(), key=lambda t: -t[1])),
                    blank=len(blank),
                    blank_examples=tuple(blank[:20]),
                )
            )
        # Odd modes: anything always odd, or a minority mode in the set (grey among RGB).
        if use_raw:
            total: dict[str, int] = {}
            for s in splits:
                for kind, c in s.kinds:
                    total[kind] = total.get(kind, 0) + c
            majority = max(total, key=total.get) if total else ""
            odd_kinds = {kd for kd in total if kd != majority or kd in ALWAYS_ODD}
            for split, kind_of in kind_by_split.items():
                odd.extend(
                    BadItem(split, i, f"mode {kd} in a set of mostly {majority}")
                    for i, kd in sorted(kind_of.items())
                    if kd in odd_kinds
                )
        by = {s.split: s for s in splits}
        p_chi2 = math.nan
        if "train" in by and "val" in by:
            table = np.array([by["train"].counts, by["val"].counts])
            table = table[:, table.sum(0) > 0]
            if table.shape[1] > 1 and table.sum(1).min() > 0:
                p_chi2 = float(stats.chi2_contingency(table).pvalue)
        shifts = []
        if "train" in props and "val" in props:
            for name, tr in props["train"].items():
                va = props["val"].get(name, [])
                if len(tr) < 5 or len(va) < 5 or (np.ptp(tr) == 0 and np.ptp(va) == 0):
                    continue
                res = stats.ks_2samp(tr, va)
                shifts.append(
                    PropertyShift(
                        name,
                        round(float(np.median(tr)), 5),
                        round(float(np.median(va)), 5),
                        round(float(res.statistic), 5),
                        float(res.pvalue),
                    )
                )
        progress.update(1.0)
        return HealthMeasurement(
            classes=ctx.case.classes,
            splits=tuple(splits),
            bad=tuple(bad[:200]),
            odd=tuple(odd[:200]),
            class_chi2_p=p_chi2,
            shifts=tuple(shifts),
            properties_from="raw images" if use_raw else "model inputs",
        )

    def judge(self, m: HealthMeasurement) -> Finding:
        sampled = sum(s.sampled for s in m.splits) or 1
        concerns = (self._corrupt(m, sampled), self._imbalance(m), self._shift(m))
        return self.present(m, sampled, concerns)

    # --- the judgement, one concern at a time (thresholds only here) -------------------------

    def _corrupt(self, m: HealthMeasurement, sampled: int) -> Concern:
        th = self.thresholds
        blanks = sum(s.blank for s in m.splits)
        if not (m.bad or m.odd or blanks):
            complete = all(s.sampled >= s.size for s in m.splits)
            return Concern(
                effects=(
                    refutes(
                        "corrupt_inputs",
                        Strength.MODERATE if complete else Strength.WEAK,
                        f"all {sampled} sampled items load as finite tensors of one shape",
                    ),
                )
            )
        parts = []
        if m.bad or m.odd:
            first = m.bad[0] if m.bad else m.odd[0]
            parts.append(
                f"{len(m.bad)} unusable item(s) and {len(m.odd)} odd-mode image(s) among "
                f"{sampled} sampled; first: {first.split} item {first.index}: {first.reason}"
            )
        if blanks:
            parts.append(
                f"{blanks} of {sampled} sampled inputs are blank (every channel one constant: a "
                "decoder's fallback image) — "
                + ", ".join(f"{s.split} {s.blank}" for s in m.splits if s.blank)
            )
        what = "; ".join(parts)
        # Blank inputs count as corrupt only as a pattern (a single blank image can be real).
        unusable = len(m.bad) + (blanks if blanks >= th.blank_count else 0)
        share = unusable / sampled
        strength = (
            Strength.STRONG
            if share >= th.corrupt_share
            else Strength.MODERATE if m.bad or m.odd or unusable else Strength.WEAK
        )
        rows = tuple((b.split, b.index, b.reason) for b in (*m.bad, *m.odd)[:50]) + tuple(
            (s.split, i, "blank input (one constant value per channel)")
            for s in m.splits
            for i in s.blank_examples
        )
        return Concern(
            effects=(supports("corrupt_inputs", strength, what),),
            problems=(what,),
            metrics=(Metric("blank inputs", blanks),) if blanks else (),
            tables=(Table("problem items", ("split", "index", "problem"), rows[:80]),),
            next_steps=(
                "Fix or drop the listed items (re-encode odd modes to the set's mode; make the "
                "loader raise instead of returning a blank image).",
            ),
        )

    def _imbalance(self, m: HealthMeasurement) -> Concern:
        th = self.thresholds
        by = {s.split: s for s in m.splits}
        counts_rows = tuple(
            (name, *(s.counts[c] if c < len(s.counts) else 0 for s in m.splits))
            for c, name in enumerate(m.classes)
        )
        table = Table("class counts", ("class", *(s.split for s in m.splits)), counts_rows)
        if "train" not in by or not sum(by["train"].counts):
            return Concern(tables=(table,))
        counts = by["train"].counts
        hi, lo = max(counts), min(counts)
        ratio = hi / lo if lo else math.inf
        metric = Metric("train imbalance ratio", ratio, "largest/smallest class")
        rare = m.classes[counts.index(lo)]
        if ratio >= th.imbalance_moderate:
            what = (
                f"train classes are imbalanced {ratio:.1f}:1 (class {rare!r} has {lo}, "
                f"the largest {hi})"
            )
            strong = ratio >= th.imbalance_strong
            return Concern(
                effects=(
                    supports(
                        "class_imbalance", Strength.STRONG if strong else Strength.MODERATE, what
                    ),
                ),
                problems=(what,),
                metrics=(metric,),
                tables=(table,),
                next_steps=(
                    "Report per-class recall, and re-weight or re-sample the rare classes.",
                ),
            )
        effects = ()
        if ratio <= 1.5:
            effects = (
                refutes(
                    "class_imbalance",
                    Strength.MODERATE,
                    f"train classes are balanced within {ratio:.2f}:1",
                ),
            )
        return Concern(effects=effects, metrics=(metric,), tables=(table,))

    def _shift(self, m: HealthMeasurement) -> Concern:
        th = self.thresholds
        by = {s.split: s for s in m.splits}
        effects, problems, metrics, tables = [], [], [], []
        if "train" in by and "val" in by and not math.isnan(m.class_chi2_p):
            tv = _tvd(by["train"].counts, by["val"].counts)
            metrics.append(Metric("class balance shift (TVD)", tv))
            metrics.append(Metric("class balance chi-square p", m.class_chi2_p))
            if m.class_chi2_p < th.alpha and tv >= th.class_shift_moderate:
                what = (
                    f"val class balance differs from train (total variation {tv:.2f}, "
                    f"chi-square p={m.class_chi2_p:.1e})"
                )
                problems.append(what)
                effects.append(
                    supports(
                        "distribution_shift",
                        Strength.STRONG if tv >= th.class_shift_strong else Strength.MODERATE,
                        what,
                    )
                )
        if m.shifts:
            alpha = th.alpha / len(m.shifts)
            tables.append(
                Table(
                    f"image properties, train vs val ({m.properties_from})",
                    ("property", "train median", "val median", "KS D", "p-value"),
                    tuple(
                        (
                            s.name,
                            s.train_median,
                            s.val_median,
                            s.statistic,
                            float(f"{s.p_value:.3g}"),
                        )
                        for s in m.shifts
                    ),
                )
            )
            worst = max(m.shifts, key=lambda s: s.statistic)
            metrics.append(Metric(f"largest property shift (KS D, {worst.name})", worst.statistic))
            shifted = [s for s in m.shifts if s.p_value < alpha and s.statistic >= th.ks_moderate]
            if shifted:
                big = [s for s in shifted if s.statistic >= th.ks_strong]
                what = "val images differ from train in " + ", ".join(
                    f"{s.name} (median {s.train_median:.3g} → {s.val_median:.3g}, KS D="
                    f"{s.statistic:.2f}, p={s.p_value:.1e})"
                    for s in sorted(shifted, key=lambda s: -s.statistic)
                )
                # Measured on model inputs, a difference may come from the eval transform
                # rather than the images: never more than MODERATE then.
                strong = bool(big) and m.properties_from == "raw images"
                if m.properties_from != "raw images":
                    what += " (measured after each split's own transform)"
                problems.append(what)
                effects.append(
                    supports(
                        "distribution_shift", Strength.STRONG if strong else Strength.MODERATE, what
                    )
                )
        next_steps: tuple[str, ...] = ()
        if effects:
            next_steps = (
                "Compare a few val and train images of the shifted property; re-split or collect "
                "val data from the distribution you deploy on.",
            )
        elif "val" in by and (m.shifts or not math.isnan(m.class_chi2_p)):
            effects.append(
                refutes(
                    "distribution_shift",
                    Strength.MODERATE,
                    "no significant train/val difference in class balance or image properties",
                )
            )
        return Concern(
            tuple(effects), tuple(problems), tuple(metrics), tuple(tables), next_steps
        )

    # --- presentation (no thresholds) --------------------------------------------------------

    def present(
        self, m: HealthMeasurement, sampled: int, concerns: tuple[Concern, ...]
    ) -> Finding:
        metrics = (
            Metric("items sampled", sampled),
            Metric("bad items", len(m.bad)),
            Metric("odd-mode images", len(m.odd)),
            *(x for c in concerns for x in c.metrics),
        )
        tables = tuple(t for c in concerns for t in c.tables)
        effects = tuple(e for c in concerns for e in c.effects)
        problems = [p for c in concerns for p in c.problems]
        if not problems:
            sizes = ", ".join(f"{s.split} {s.size}" for s in m.splits)
            return Finding(
                self.id,
                Verdict.PASS,
                f"Data looks healthy ({sizes}): every sampled item loads, classes are "
                "balanced enough and val matches train in class balance and image properties.",
                metrics=metrics,
                tables=tables,
                effects=effects,
            )
        return self.finding(
            "; ".join(problems) + ".",
            metrics=metrics,
            tables=tables,
            effects=effects,
            next_step=" ".join(s for c in concerns for s in c.next_steps),
            notes=tuple(
                f"class counts of {s.split} are from a sample of {s.sampled}"
                for s in m.splits
                if s.counts_from == "sample" and s.sampled < s.size
            ),
            concern=True,
        )


def _tvd(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    sa, sb = sum(a) or 1, sum(b) or 1
    return 0.5 * sum(abs(x / sa - y / sb) for x, y in zip(a, b, strict=True))


def _labels_attribute(dataset, k: int):  # noqa: ANN001, ANN202
    """Whole-split class counts from a `targets`/`labels` attribute, without loading images."""
    import numpy as np

    for attr in ("targets", "labels"):
        labels = getattr(dataset, attr, None)
        if labels is None:
            continue
        try:
            arr = np.asarray(labels).astype(np.int64).ravel()
        except (TypeError, ValueError):
            continue
        if len(arr) == len(dataset) and arr.size and arr.min() >= 0 and arr.max() < k:
            return np.bincount(arr, minlength=k)
    return None


def _raw_pass(ctx, split, indices, values, bad, kind_of, progress) -> dict[str, int]:  # noqa: ANN001
    """Decode raw images fully: modes (count per mode, and `kind_of[index]`), sizes and
    properties; failures become bad items."""
    from detective.analysis.imageprops import tensor_properties
    from detective.analysis.rawimages import inspect, to_unit_tensor
    from detective.core.itemerrors import bomb_guard, describe_item_error

    raw = ctx.raw_dataset(split)
    kinds: dict[str, int] = {}
    known_bad = {b.index for b in bad if b.split == split}
    pending: dict[tuple[int, ...], list] = {}  # images of one shape, computed batched

    def flush(shape: tuple[int, ...]) -> None:
        import torch

        group = pending.pop(shape, [])
        if group:
            for name, v in tensor_properties(torch.stack(group)).as_dict().items():
                values.setdefault(name, []).extend(v.tolist())

    for n, i in enumerate(indices):
        if n % 64 == 0:
            progress.update(n, len(indices), f"decoding raw {split} images")
        try:
            with bomb_guard():
                image = raw[i][0]
                info = inspect(image)
            x = to_unit_tensor(image)
        except Exception as e:  # user data: one bad file must not stop the others
            if i not in known_bad:
                bad.append(BadItem(split, i, f"raw image: {describe_item_error(e)}"))
            continue
        kinds[info.kind] = kinds.get(info.kind, 0) + 1
        kind_of[i] = info.kind
        if x.shape[0] not in (1, 3):
            x = x[:3] if x.shape[0] > 3 else x[:1]
        group = pending.setdefault(tuple(x.shape), [])
        group.append(x)
        if len(group) >= 256:
            flush(tuple(x.shape))
        values.setdefault("width", []).append(float(info.width))
        values.setdefault("height", []).append(float(info.height))
        values.setdefault("aspect", []).append(info.width / max(info.height, 1))
    for shape in list(pending):
        flush(shape)
    progress.update(1.0)
    return kinds
