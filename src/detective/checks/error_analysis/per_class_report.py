"""Per-class report on the eval split: precision/recall/F1/support, macro and balanced accuracy
beside accuracy, the confusion matrix and the largest confusions (from the collection pass)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from detective.analysis.erroranalysis import PerClass
from detective.analysis.permutation import PermutationFit
from detective.core.findings import (
    Artifact,
    Finding,
    Metric,
    Strength,
    Table,
    Verdict,
    pair_ref,
    refutes,
    supports,
)
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register


@dataclass(frozen=True)
class PerClassThresholds:
    imbalance_ratio: float = 3.0  # largest / smallest class support that counts as imbalanced
    hidden_gap: float = 0.10  # accuracy - balanced accuracy that "accuracy hides"
    poor_recall: float = 0.5  # a minority class at or below this recall is failing
    minority_share: float = 0.5  # support <= this x the median support = a minority class
    min_support: int = 5
    weak_class_drop: float = 0.25  # a class this far below accuracy is worth a warning
    # The confusion matrix read as a permutation of the labels (cross-fitted Hungarian):
    permutation_gain: float = 0.2  # held-out accuracy a relabelling recovers: labels shifted
    permutation_gain_moderate: float = 0.05
    permutation_z: float = 5.0  # sign test of the items it fixes against those it breaks


@dataclass(frozen=True)
class PerClassMeasurement:
    split: str
    report: PerClass
    confusion_png: str
    permutation: PermutationFit | None = None  # None in sessions stored before it was measured


@register
class PerClassReport(Check[PerClassMeasurement]):
    id = "per_class_report"
    title = "Per-class report"
    stage = Stage.ERROR_ANALYSIS
    description = (
        "Precision, recall, F1 and support per class on the eval split, macro and balanced "
        "accuracy beside accuracy, the confusion matrix and the largest confusions."
    )
    hypotheses = ("class_imbalance", "label_misalignment")
    measurement_type = PerClassMeasurement
    thresholds_type = PerClassThresholds

    def measure(self, ctx, progress) -> PerClassMeasurement:
        from detective.analysis.erroranalysis import eval_collection, per_class
        from detective.analysis.permutation import fit_permutation
        from detective.analysis.pngplots import heatmap_png

        progress.update(0.0)
        col = eval_collection(ctx, progress)
        report = per_class(col)
        path, rel = ctx.artifact(self.id, "confusion.png")
        heatmap_png(report.matrix, col.classes, path, f"confusion matrix, {col.split} ({col.n})")
        perm = fit_permutation(col.label, col.pred, col.num_classes, ctx.options.seed)
        progress.update(1.0)
        return PerClassMeasurement(col.split, report, rel, perm)

    def judge(self, m: PerClassMeasurement) -> Finding:
        # The largest confusions are reviewable as pairs (never as items of the split).
        names = [row.name for row in m.report.rows]
        pairs = tuple(
            pair_ref(names[c.true], names[c.pred], c.count, m.confusion_png)
            for c in m.report.top_confusions
        )
        return self._permutation(m, replace(self._judge(m), failures=pairs))

    def _permutation(self, m: PerClassMeasurement, f: Finding) -> Finding:
        """label_misalignment when the model agrees with a relabelled val split far better than
        with the labels as given: a shifted class index, not a model error."""
        th, p = self.thresholds, m.permutation
        if p is None or not p.n:
            return f
        names = [row.name for row in m.report.rows]
        gain = p.permuted_accuracy - p.identity_accuracy
        metrics = (
            Metric("accuracy under the confusion permutation (cross-fitted)", p.permuted_accuracy),
            Metric("classes the permutation moves", len(p.moved)),
        )
        # A relabelling moves several classes, each mostly predicted as its new class; a model
        # that predicts one minority class for everything "gains" from mapping the majority
        # class onto it, for one class only.
        rows = m.report.matrix
        convinced = [c for c in p.moved if 2 * rows[c][p.mapping[c]] > sum(rows[c])]
        if not (
            gain >= th.permutation_gain_moderate
            and p.z >= th.permutation_z
            and len(convinced) >= 2
        ):
            return replace(f, metrics=f.metrics + metrics)
        moved = ", ".join(f"{names[c]}→{names[p.mapping[c]]}" for c in p.moved[:8])
        what = (
            f"the {m.split} predictions agree with a relabelling of the split ({moved}) far "
            f"better than with its labels: {p.permuted_accuracy:.1%} vs "
            f"{p.identity_accuracy:.1%} on held-out halves ({p.gained} items fixed, {p.lost} "
            "broken): the label indices are shifted against the ones the model was trained on"
        )
        strength = Strength.STRONG if gain >= th.permutation_gain else Strength.MODERATE
        return replace(
            f,
            verdict=Verdict.FAIL,
            summary=f"Labels look permuted: {what}. {f.summary}",
            metrics=f.metrics + metrics,
            effects=f.effects + (supports("label_misalignment", strength, what),),
            next_step="Build every split's class→index map from one list (e.g. train's "
            "class_to_idx); an ImageFolder tree missing a class folder shifts the indices.",
        )

    def _judge(self, m: PerClassMeasurement) -> Finding:
        th = self.thresholds
        r = m.report
        names = [row.name for row in r.rows]
        supports_ = [row.support for row in r.rows if row.support > 0]
        ratio = max(supports_) / min(supports_) if supports_ else 1.0
        median = sorted(supports_)[len(supports_) // 2] if supports_ else 0
        gap = r.accuracy - r.balanced_accuracy
        failing_minorities = [
            row
            for row in r.rows
            if th.min_support <= row.support <= th.minority_share * median
            and row.recall <= th.poor_recall
        ]
        weak = [
            row
            for row in r.rows
            if row.support >= th.min_support and row.recall <= r.accuracy - th.weak_class_drop
        ]
        metrics = (
            Metric("examples", r.n, key="examples"),
            Metric("accuracy", r.accuracy, key="accuracy"),
            Metric("balanced accuracy", r.balanced_accuracy, key="balanced_accuracy"),
            Metric("macro F1", r.macro_f1, key="macro_f1"),
            Metric("macro precision", r.macro_precision),
            Metric("support ratio (largest/smallest)", ratio, key="support_ratio"),
            Metric("accuracy - balanced accuracy", gap),
        )
        tables = (
            Table(
                "per class",
                ("class", "support", "predicted", "precision", "recall", "F1"),
                tuple(
                    (
                        row.name,
                        row.support,
                        row.predicted,
                        round(row.precision, 3),
                        round(row.recall, 3),
                        round(row.f1, 3),
                    )
                    for row in r.rows
                ),
                key="per_class",
            ),
            Table(
                "largest confusions",
                ("true", "predicted", "count", "share of errors"),
                tuple(
                    (names[c.true], names[c.pred], c.count, round(c.share_of_errors, 3))
                    for c in r.top_confusions
                ),
            ),
            Table(
                "confusion matrix (rows true, columns predicted)",
                ("true \\ pred", *names),
                tuple((names[i], *row) for i, row in enumerate(r.matrix)),
            ),
        )
        artifacts = (Artifact("confusion matrix", m.confusion_png, f"{m.split}, rows = true"),)
        confusions = ", ".join(
            f"{names[c.true]}→{names[c.pred]} ({c.count})" for c in r.top_confusions[:3]
        )
        base = (
            f"{m.split}: accuracy {r.accuracy:.1%}, balanced accuracy {r.balanced_accuracy:.1%}, "
            f"macro F1 {r.macro_f1:.3f} over {r.n} examples"
            + (f"; largest confusions {confusions}" if confusions else "")
        )
        if ratio >= th.imbalance_ratio and gap >= th.hidden_gap and failing_minorities:
            which = ", ".join(
                f"{row.name} ({row.recall:.0%} of {row.support})" for row in failing_minorities
            )
            return Finding(
                self.id,
                Verdict.FAIL,
                f"Accuracy hides poor recall on minority classes: {base}. Classes are "
                f"imbalanced {ratio:.1f}:1 and recall is low on {which}.",
                metrics=metrics,
                tables=tables,
                artifacts=artifacts,
                effects=(
                    supports(
                        "class_imbalance",
                        Strength.STRONG,
                        f"accuracy {r.accuracy:.1%} vs balanced accuracy {r.balanced_accuracy:.1%}"
                        f" with {ratio:.1f}:1 imbalance; minority recall: {which}",
                    ),
                ),
                next_step="Report balanced accuracy / macro F1; rebalance (class weights, "
                "resampling) or collect more minority examples, then compare per-class recall.",
            )
        effects = []
        if ratio >= th.imbalance_ratio and gap >= th.hidden_gap / 2:
            effects.append(
                supports(
                    "class_imbalance",
                    Strength.MODERATE,
                    f"{ratio:.1f}:1 imbalance and accuracy exceeds balanced accuracy by {gap:.1%}",
                )
            )
        elif ratio < 1.5 and abs(gap) < 0.02:
            effects.append(
                refutes(
                    "class_imbalance",
                    Strength.WEAK,
                    f"classes are balanced ({ratio:.2f}:1) and accuracy ≈ balanced accuracy",
                )
            )
        if weak:
            which = ", ".join(f"{row.name} (recall {row.recall:.0%})" for row in weak)
            return Finding(
                self.id,
                Verdict.WARN,
                f"Some classes are much worse than the rest: {which}. {base}.",
                metrics=metrics,
                tables=tables,
                artifacts=artifacts,
                effects=tuple(effects),
                next_step="Look at the confusions of those classes and the slice analysis.",
            )
        return Finding(
            self.id,
            Verdict.WARN if effects and effects[0].direction == "supports" else Verdict.PASS,
            base + ".",
            metrics=metrics,
            tables=tables,
            artifacts=artifacts,
            effects=tuple(effects),
        )
