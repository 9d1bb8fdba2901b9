"""Labels still match their images, before and after augmentation.

Three measurements: (1) item i's label in `datasets()` against item i's in `raw_datasets()`;
(2) how learnable each split's labels are for a cheap pixel probe (3-fold CV): labels shuffled
apart from their images make one split unlearnable while the other is fine; (3) a probe trained
on un-augmented train images, scored on val images under each random augmentation alone: an
augmentation that moves images out of their class (a vertical flip turns 6 into 9) collapses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detective.core.budget import READ_OPS, CaseSize, Cost, Knob
from detective.core.findings import (
    Concern,
    Effect,
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
class AlignThresholds:
    mismatch_share: float = 0.01  # index mismatches an expert acts on
    probe_gap: float = 0.3  # CV-accuracy gap between the splits that signals misalignment
    aug_drop_strong: float = 0.25  # probe accuracy lost when the augmentation fires
    aug_drop_moderate: float = 0.1
    min_probe: float = 0.5  # a probe weaker than this (or 3× chance) cannot judge augmentations
    # One class's accuracy lost under one augmentation (a mirrored 2 reads as a 5 while 0, 1, 8
    # survive): the overall drop can hide it.
    class_drop: float = 0.5
    class_z: float = 3.0  # sign test of the class's items it breaks against those it fixes
    min_class_items: int = 10


@dataclass(frozen=True)
class AlignSettings:
    """How much label_alignment measures (read by measure only)."""

    sample: int = 1000  # train items for the index comparison and the probe
    aug_sample: int = 300  # val images per augmentation


@dataclass(frozen=True)
class Mismatch:
    split: str
    index: int
    label: int
    raw_label: int


@dataclass(frozen=True)
class ClassShift:
    """One class's val items under one augmentation, paired with the same items un-augmented."""

    label: int
    items: int
    clean_correct: int
    augmented_correct: int
    broken: int  # right un-augmented, wrong augmented
    fixed: int  # the reverse

    @property
    def drop(self) -> float:
        return (self.clean_correct - self.augmented_correct) / self.items if self.items else 0.0

    @property
    def z(self) -> float:
        both = self.broken + self.fixed
        return (self.broken - self.fixed) / both**0.5 if both else 0.0


@dataclass(frozen=True)
class AugmentationEffect:
    name: str
    detail: str  # repr of the transform
    probability: float  # how often it fires in training (1.0 when it has no p)
    accuracy: float  # probe accuracy on val images with this augmentation applied
    confusions: tuple[tuple[int, int, int], ...]  # (true, predicted, count), largest first
    per_class: tuple[ClassShift, ...] = ()  # empty in sessions stored before it was measured


@dataclass(frozen=True)
class AlignMeasurement:
    classes: tuple[str, ...]
    compared: int  # items compared index by index with raw_datasets (0 when there are none)
    mismatches: tuple[Mismatch, ...]  # at most 50
    mismatch_count: int
    train_cv_accuracy: float
    val_cv_accuracy: float
    clean_accuracy: float  # probe (fit on clean train) on clean val
    augmentations: tuple[AugmentationEffect, ...]
    notes: tuple[str, ...]


@register
class LabelAlignment(Check[AlignMeasurement]):
    id = "label_alignment"
    title = "Labels match images (and survive augmentation)"
    stage = Stage.PIPELINE
    description = (
        "Compares each item's label with the raw dataset's, probes how learnable each split's "
        "labels are, and scores a probe trained on clean images on val images under each random "
        "augmentation alone to find label-changing augmentations."
    )
    needs = ("model", "datasets")
    hypotheses = ("label_misalignment", "augmentation_breaks_labels")
    measurement_type = AlignMeasurement
    thresholds_type = AlignThresholds
    settings_type = AlignSettings
    shrinkable = (Knob("sample", 300), Knob("aug_sample", 100))

    def cost(self, size: CaseSize) -> Cost:
        """Both splits' samples read twice (the dataset, the raw label), and `aug_sample` val
        images per augmentation (planned for three) decoded and transformed."""
        n = min(size.sample, self.settings.sample)
        reads = 2 * (min(n, size.train_n) + min(n, size.val_n))
        reads += 3 * min(self.settings.aug_sample, size.val_n)
        return Cost(host_ops=reads * READ_OPS)

    def measure(self, ctx, progress) -> AlignMeasurement:
        import numpy as np

        from detective.analysis.augment import augmentations, deterministic
        from detective.analysis.augprobe import PixelProbe, cv_accuracy, features, isolate
        notes: list[str] = []
        has_raw = ctx.case.has("raw_datasets")
        tfs = ctx.case.transforms() if ctx.case.has("transforms") else None
        n = min(ctx.options.sample, self.settings.sample)
        split_x: dict[str, np.ndarray] = {}
        split_y: dict[str, np.ndarray] = {}
        mismatches: list[Mismatch] = []
        compared = mismatch_count = 0
        for k, split in enumerate(("train", "val")):
            span = progress.span(0.3 * k, 0.3 * (k + 1))
            indices = ctx.sample_indices(split, n)
            feats, labels, ids = [], [], []
            for batch in ctx.batches(split, indices, progress=span, to_device=False):
                feats.append(features(batch.x))
                labels.extend(batch.y.tolist())
                ids.extend(batch.indices.tolist())
            if has_raw:
                raw = ctx.raw_dataset(split)
                for i, label in zip(ids, labels, strict=True):
                    try:
                        raw_label = int(raw[i][1])
                    except Exception as e:  # a bad raw item is data_health's to report
                        notes.append(f"raw {split} item {i}: {type(e).__name__}: {e}")
                        continue
                    compared += 1
                    if raw_label != label:
                        mismatch_count += 1
                        if len(mismatches) < 50:
                            mismatches.append(Mismatch(split, i, label, raw_label))
            if feats:
                split_x[split], split_y[split] = np.concatenate(feats), np.asarray(labels)
        progress.update(0.6, None, "probing how learnable each split's labels are")
        cv = {
            s: cv_accuracy(split_x[s], split_y[s], ctx.options.seed) if s in split_x else math.nan
            for s in ("train", "val")
        }
        clean_acc = math.nan
        effects: list[AugmentationEffect] = []
        if has_raw and tfs is not None:
            clean_tf, ok = deterministic(tfs["train"])
            augs = augmentations(tfs["train"]) if ok else []
            if not ok:
                notes.append(
                    "The train transform is not a torchvision Compose: augmentations could not "
                    "be listed or isolated."
                )
            raw_train, raw_val = ctx.raw_dataset("train"), ctx.raw_dataset("val")
            train_ids = ctx.sample_indices("train", n)
            val_ids = ctx.sample_indices("val", min(n, self.settings.aug_sample))
            x_tr, y_tr = _through(raw_train, train_ids, clean_tf, ctx.options.seed)
            x_va, y_va = _through(raw_val, val_ids, clean_tf, ctx.options.seed)
            if len(x_tr) and len(x_va) and len(set(y_tr.tolist())) > 1:
                probe = PixelProbe(ctx.options.seed).fit(features(x_tr), y_tr)
                clean_pred = probe.predict(features(x_va))
                clean_acc = float((clean_pred == y_va).mean())
                for a, aug in enumerate(augs):
                    progress.update(0.7 + 0.3 * a / max(len(augs), 1), None, type(aug).__name__)
                    try:
                        x_aug, y_aug = _through(
                            raw_val, val_ids, isolate(tfs["train"], aug), ctx.options.seed
                        )
                    except Exception as e:  # an augmentation that cannot run alone
                        notes.append(f"{type(aug).__name__} could not run alone: {e}")
                        continue
                    pred = probe.predict(features(x_aug))
                    pairs: dict[tuple[int, int], int] = {}
                    for t, p in zip(y_aug.tolist(), pred.tolist(), strict=True):
                        if t != p:
                            pairs[(t, p)] = pairs.get((t, p), 0) + 1
                    top = sorted(pairs.items(), key=lambda kv: -kv[1])[:5]
                    effects.append(
                        AugmentationEffect(
                            type(aug).__name__,
                            repr(aug)[:120],
                            float(getattr(aug, "p", 1.0)),
                            float((pred == y_aug).mean()),
                            tuple((t, p, c) for (t, p), c in top),
                            _per_class(y_va, clean_pred, y_aug, pred),
                        )
                    )
        elif not has_raw:
            notes.append(
                "No raw_datasets(): labels were not compared index by index and "
                "augmentations were not probed."
            )
        progress.update(1.0)
        return AlignMeasurement(
            classes=ctx.case.classes,
            compared=compared,
            mismatches=tuple(mismatches),
            mismatch_count=mismatch_count,
            train_cv_accuracy=cv["train"],
            val_cv_accuracy=cv["val"],
            clean_accuracy=clean_acc,
            augmentations=tuple(effects),
            notes=tuple(notes[:20]),
        )

    def judge(self, m: AlignMeasurement) -> Finding:
        return self.present(m, (self._alignment(m), self._augmentations(m)))

    # --- the judgement, one concern at a time (thresholds only here) -------------------------

    def _able(self, m: AlignMeasurement) -> bool:
        """Whether the pixel probe is good enough on clean images to judge augmentations."""
        chance = 1 / max(len(m.classes), 1)
        return not math.isnan(m.clean_accuracy) and m.clean_accuracy >= max(
            self.thresholds.min_probe, 3 * chance
        )

    def _alignment(self, m: AlignMeasurement) -> Concern:
        """label_misalignment: index comparison, then the learnability gap between splits."""
        th = self.thresholds
        chance = 1 / max(len(m.classes), 1)
        effects, problems, tables, steps = [], [], [], []
        share = m.mismatch_count / m.compared if m.compared else 0.0
        if m.mismatch_count:
            what = (
                f"{m.mismatch_count} of {m.compared} items ({share:.1%}) carry a different label "
                "in datasets() than in raw_datasets() at the same index"
            )
            problems.append(what)
            effects.append(
                supports(
                    "label_misalignment",
                    Strength.STRONG if share >= th.mismatch_share else Strength.MODERATE,
                    what,
                )
            )
            tables.append(
                Table(
                    "label mismatches (datasets vs raw_datasets)",
                    ("split", "index", "label", "raw label"),
                    tuple(
                        (x.split, x.index, _name(m, x.label), _name(m, x.raw_label))
                        for x in m.mismatches
                    ),
                )
            )
            steps.append("Index images and labels together (one list of pairs, shuffled once).")
        a, b = m.train_cv_accuracy, m.val_cv_accuracy
        gap_found = False
        if not (math.isnan(a) or math.isnan(b)):
            lo_split, lo, hi = ("train", a, b) if a < b else ("val", b, a)
            if hi - lo >= th.probe_gap and hi >= th.min_probe:
                gap_found = True
                what = (
                    f"{lo_split} labels are far less learnable than the other split's (probe CV "
                    f"accuracy {lo:.1%} vs {hi:.1%}, chance {chance:.0%}): labels do not belong "
                    "to their images there"
                )
                problems.append(what)
                effects.append(
                    supports(
                        "label_misalignment",
                        Strength.STRONG if lo <= 2 * chance else Strength.MODERATE,
                        what,
                    )
                )
        if not m.mismatch_count and not gap_found and m.compared:
            effects.append(
                refutes(
                    "label_misalignment",
                    Strength.MODERATE,
                    f"labels agree with raw_datasets() on all {m.compared} items compared and "
                    f"both splits are equally learnable ({a:.0%} / {b:.0%})",
                )
            )
        return Concern(
            tuple(effects), tuple(problems), tables=tuple(tables), next_steps=tuple(steps)
        )

    def _augmentations(self, m: AlignMeasurement) -> Concern:
        """augmentation_breaks_labels: accuracy of a clean-trained probe under each one."""
        th = self.thresholds
        if not m.augmentations:
            return Concern()
        able = self._able(m)
        table = Table(
            "probe accuracy on val with one augmentation applied (always firing)",
            ("augmentation", "fires with p", "accuracy", "drop", "worst class", "top confusions"),
            tuple(
                (
                    e.name,
                    e.probability,
                    round(e.accuracy, 4),
                    round(m.clean_accuracy - e.accuracy, 4),
                    _worst_class(m, e),
                    ", ".join(
                        f"{_name(m, t)}→{_name(m, p)} ×{c}" for t, p, c in e.confusions[:3]
                    ),
                )
                for e in m.augmentations
            ),
        )
        worst = max(m.augmentations, key=lambda e: m.clean_accuracy - e.accuracy)
        drop = m.clean_accuracy - worst.accuracy
        metric = Metric("largest accuracy drop under one augmentation", drop)
        collapsed = [
            (e, c)
            for e in m.augmentations
            for c in e.per_class
            if c.items >= th.min_class_items and c.drop >= th.class_drop and c.z >= th.class_z
        ]
        if able and drop < th.aug_drop_moderate and collapsed:
            return self._class_collapse(m, collapsed, metric, table)
        if able and drop >= th.aug_drop_moderate:
            bad = [
                e for e in m.augmentations if m.clean_accuracy - e.accuracy >= th.aug_drop_moderate
            ]
            what = "; ".join(
                f"{e.name} drops a clean-trained probe from {m.clean_accuracy:.1%} to "
                f"{e.accuracy:.1%} (most often "
                + ", ".join(f"{_name(m, t)}→{_name(m, p)}" for t, p, _ in e.confusions[:3])
                + ")"
                for e in bad
            )
            problems = [what]
            # The probe is linear on pixels, so it is not translation invariant: a shift or
            # crop costs it accuracy whether or not the label still holds. Such a drop is a
            # lead, not evidence an expert would act on.
            blind = _moves_pixels(worst)
            if blind:
                problems.append(
                    f"{worst.name} moves pixels around, which a linear pixel probe cannot tell "
                    "from a label change: check its examples in visualize_batch"
                )
            strength = (
                Strength.STRONG if drop >= th.aug_drop_strong and not blind else Strength.MODERATE
            )
            return Concern(
                (supports("augmentation_breaks_labels", strength, what),),
                tuple(problems),
                (metric,),
                (table,),
                (
                    f"Remove {worst.name} (or restrict it to classes it cannot change) and "
                    "retrain; for digits/text never flip.",
                ),
            )
        effects: tuple[Effect, ...] = ()
        if able and not collapsed:
            effects = (
                refutes(
                    "augmentation_breaks_labels",
                    Strength.MODERATE,
                    f"no augmentation costs a clean-trained probe more than {drop:.1%}",
                ),
            )
        return Concern(effects, metrics=(metric,), tables=(table,))

    def _class_collapse(self, m: AlignMeasurement, collapsed, metric, table) -> Concern:  # noqa: ANN001
        """An augmentation harmless on average that destroys some classes: it changes what
        those classes' labels mean (a mirrored 2 is a 5; 0, 1 and 8 survive a mirror)."""
        th = self.thresholds
        aug = max(collapsed, key=lambda ec: ec[1].drop)[0]
        classes = sorted((c for e, c in collapsed if e is aug), key=lambda c: -c.drop)
        confusions = {t: p for t, p, _ in reversed(aug.confusions)}
        what = f"{aug.name} leaves the probe's overall accuracy near {aug.accuracy:.0%} but " + (
            ", ".join(
                f"class {_name(m, c.label)} falls from {c.clean_correct / c.items:.0%} to "
                f"{c.augmented_correct / c.items:.0%} of {c.items}"
                + (f" (read as {_name(m, confusions[c.label])})" if c.label in confusions else "")
                for c in classes[:4]
            )
        )
        blind = _moves_pixels(aug)
        problems = [what]
        if blind:
            problems.append(
                f"{aug.name} moves pixels around, which a linear pixel probe cannot tell from a "
                "label change: check its examples in visualize_batch"
            )
        strong = not blind and any(c.drop >= th.aug_drop_strong for c in classes)
        return Concern(
            (
                supports(
                    "augmentation_breaks_labels",
                    Strength.STRONG if strong else Strength.MODERATE,
                    what,
                ),
            ),
            tuple(problems),
            (metric, Metric("classes it destroys", len(classes))),
            (table,),
            (f"Remove {aug.name} (or restrict it to classes it cannot change) and retrain.",),
        )

    # --- presentation (no thresholds) --------------------------------------------------------

    def present(self, m: AlignMeasurement, concerns: tuple[Concern, ...]) -> Finding:
        metrics = (
            Metric("items compared with raw", m.compared),
            Metric("label mismatches with raw", m.mismatch_count),
            Metric("probe CV accuracy, train labels", m.train_cv_accuracy),
            Metric("probe CV accuracy, val labels", m.val_cv_accuracy),
            Metric("probe accuracy, clean val", m.clean_accuracy),
            *(x for c in concerns for x in c.metrics),
        )
        tables = tuple(t for c in concerns for t in c.tables)
        effects = tuple(e for c in concerns for e in c.effects)
        problems = [p for c in concerns for p in c.problems]
        able = self._able(m)
        notes = list(m.notes)
        if m.augmentations and not able:
            notes.append(
                f"The pixel probe is too weak on these images ({m.clean_accuracy:.0%} clean) to "
                "judge augmentations."
            )
        if not problems:
            a, b = m.train_cv_accuracy, m.val_cv_accuracy
            return Finding(
                self.id,
                Verdict.PASS,
                f"Labels match their images ({m.compared} compared with raw, probe CV accuracy "
                f"train {a:.0%} / val {b:.0%})"
                + (
                    f"; no augmentation changes what the label means "
                    f"({len(m.augmentations)} probed)"
                    if m.augmentations and able
                    else ""
                )
                + ".",
                metrics=metrics,
                tables=tables,
                effects=effects,
                notes=tuple(notes),
            )
        return self.finding(
            "; ".join(problems) + ".",
            metrics=metrics,
            tables=tables,
            effects=effects,
            notes=tuple(notes),
            next_step=" ".join(s for c in concerns for s in c.next_steps),
            concern=True,
        )


def _name(m: AlignMeasurement, c: int) -> str:
    return m.classes[c] if 0 <= c < len(m.classes) else str(c)


def _through(raw, indices, transform, seed: int):  # noqa: ANN001, ANN202
    """Raw images through `transform` → (tensor [N, C, H, W], labels); bad items skipped."""
    import numpy as np
    import torch

    xs: list[torch.Tensor] = []
    ys: list[int] = []
    torch.manual_seed(seed)
    for i in indices:
        try:
            item = raw[i]
            x = transform(item[0])
            label = int(item[1])
        except Exception:  # noqa: S112 - bad raw items are data_health's to report
            continue
        if isinstance(x, torch.Tensor) and x.ndim == 3 and (not xs or x.shape == xs[0].shape):
            xs.append(x.float())
            ys.append(label)
    if not xs:
        return torch.zeros(0), np.zeros(0, dtype=np.int64)
    return torch.stack(xs), np.asarray(ys)


def _worst_class(m: AlignMeasurement, e: AugmentationEffect) -> str:
    c = max(e.per_class, key=lambda c: c.drop, default=None)
    return f"{_name(m, c.label)} −{c.drop:.0%}" if c is not None and c.drop > 0 else ""


def _per_class(y, clean_pred, y_aug, aug_pred) -> tuple[ClassShift, ...]:  # noqa: ANN001
    """Per class, the same items' probe predictions without and with the augmentation (empty
    when an item failed under one transform only, so the items no longer pair up)."""
    import numpy as np

    if len(y) != len(y_aug) or not np.array_equal(y, y_aug):
        return ()
    ok, ok_aug = clean_pred == y, aug_pred == y
    out = []
    for c in np.unique(y).tolist():
        m = y == c
        out.append(
            ClassShift(
                int(c),
                int(m.sum()),
                int(ok[m].sum()),
                int(ok_aug[m].sum()),
                int((ok & ~ok_aug)[m].sum()),
                int((~ok & ok_aug)[m].sum()),
            )
        )
    return tuple(out)


def _moves_pixels(effect: AugmentationEffect) -> bool:
    """Translations, crops and warps: what a pixel probe is blind to."""
    if effect.name in ("RandomCrop", "RandomResizedCrop", "RandomPerspective", "ElasticTransform"):
        return True
    return effect.name == "RandomAffine" and "translate=" in effect.detail
