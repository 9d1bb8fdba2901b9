"""Recompute the metric the user reports (accuracy on the eval split, --reported-metric) from the
model's predictions, explain a mismatch by what the number does match, and say when accuracy
itself hides the failure (an imbalanced set where balanced accuracy is far lower)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from detective.analysis.measures import EvalModeStats
from detective.checks.evaluation_integrity.eval_mode import EvalModeThresholds, train_mode_match
from detective.core.findings import Finding, Metric, Strength, Table, Verdict, refutes, supports
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register

TRAIN_MODE = "accuracy in train mode (dropout on, batch statistics)"


@dataclass(frozen=True)
class MetricThresholds:
    rounding: float = 0.005  # a reported number is usually rounded
    z: float = 2.58  # 99% sampling interval when only a sample of the split was collected
    imbalance_ratio: float = 3.0
    hidden_gap: float = 0.10  # accuracy - balanced accuracy


@dataclass(frozen=True)
class Candidate:
    name: str
    value: float


@dataclass(frozen=True)
class MetricMeasurement:
    split: str
    n: int
    split_size: int
    skipped: int
    reported: float | None
    accuracy: float
    balanced_accuracy: float
    support_ratio: float
    candidates: tuple[Candidate, ...]  # other quantities the reported number might be
    eval_mode: EvalModeStats | None = None  # train-mode accuracy by batch size, its spread


@register
class MetricRecompute(Check[MetricMeasurement]):
    id = "metric_recompute"
    title = "Reported metric recomputed"
    stage = Stage.EVALUATION_INTEGRITY
    description = (
        "Recomputes the reported accuracy from the predictions on the eval split, explains a "
        "mismatch (top-k, error rate, train split, skipped items, balanced accuracy...), and "
        "flags accuracy on an imbalanced set that balanced accuracy exposes."
    )
    hypotheses = ("metric_bug", "eval_mode_bug")
    measurement_type = MetricMeasurement
    thresholds_type = MetricThresholds
    uses = (EvalModeStats,)  # a reported number may be the train-mode accuracy

    def measure(self, ctx, progress) -> MetricMeasurement:
        import numpy as np

        from detective.analysis.erroranalysis import eval_collection, per_class, train_collection

        progress.update(0.0)
        col = eval_collection(ctx, progress.span(0.0, 0.7))
        report = per_class(col)
        n = col.n
        hits = col.topk_classes == col.label[:, None]
        correct = int(col.correct.sum())
        sup = [r.support for r in report.rows if r.support > 0]
        cands = [
            Candidate("balanced accuracy", report.balanced_accuracy),
            Candidate("macro F1", report.macro_f1),
            Candidate("error rate (1 - accuracy)", 1 - report.accuracy),
        ]
        for k in range(2, hits.shape[1] + 1):
            cands.append(Candidate(f"top-{k} accuracy", float(hits[:, :k].any(1).mean())))
        if col.skipped:
            total = n + col.skipped
            cands.append(Candidate("accuracy counting skipped items as wrong", correct / total))
            cands.append(
                Candidate(
                    "accuracy counting skipped items as right", (correct + col.skipped) / total
                )
            )
        mode = ctx.shared(EvalModeStats, progress.span(0.7, 0.8))
        if mode.n:
            cands.append(Candidate(TRAIN_MODE, mode.train_mode_accuracy))
            if mode.train_mode_sweep:
                cands.extend(
                    Candidate(f"{TRAIN_MODE}, batch {s.batch}", s.accuracy)
                    for s in mode.train_mode_sweep
                )
            elif mode.small_batch_train_mode_accuracy is not None:
                cands.append(
                    Candidate(TRAIN_MODE + ", batch 8", mode.small_batch_train_mode_accuracy)
                )
        if col.split != "train" and ctx.options.reported_metric is not None:
            try:
                train = train_collection(ctx, progress.span(0.8, 1.0))
                cands.append(Candidate("accuracy on (a sample of) train", train.accuracy))
            except Exception as e:
                from detective.core.progress import Cancelled

                if isinstance(e, Cancelled):
                    raise
        progress.update(1.0)
        return MetricMeasurement(
            split=col.split,
            n=n,
            split_size=len(ctx.dataset(col.split)),
            skipped=col.skipped,
            reported=ctx.options.reported_metric,
            accuracy=report.accuracy,
            balanced_accuracy=report.balanced_accuracy,
            support_ratio=max(sup) / min(sup) if sup else 1.0,
            candidates=tuple(Candidate(c.name, float(np.round(c.value, 6))) for c in cands),
            eval_mode=mode if mode.n else None,
        )

    def tolerance(self, m: MetricMeasurement) -> float:
        th = self.thresholds
        p = min(max(m.accuracy, 1e-3), 1 - 1e-3)
        fpc = max(0.0, 1 - m.n / m.split_size) if m.split_size else 0.0
        return th.rounding + th.z * math.sqrt(p * (1 - p) / max(m.n, 1) * fpc)

    def judge(self, m: MetricMeasurement) -> Finding:
        th = self.thresholds
        gap = m.accuracy - m.balanced_accuracy
        hides = m.support_ratio >= th.imbalance_ratio and gap >= th.hidden_gap
        tol = self.tolerance(m)
        metrics = [
            Metric("recomputed accuracy", m.accuracy, key="recomputed_accuracy"),
            Metric("balanced accuracy", m.balanced_accuracy),
            Metric("examples", m.n),
            Metric("tolerance", tol),
        ]
        table = Table(
            "what the reported number could be",
            ("quantity", "value"),
            (
                ("accuracy", round(m.accuracy, 4)),
                *((c.name, round(c.value, 4)) for c in m.candidates),
            ),
        )
        hidden = (
            f"classes are imbalanced {m.support_ratio:.1f}:1 and accuracy {m.accuracy:.1%} hides "
            f"a balanced accuracy of {m.balanced_accuracy:.1%}"
        )
        if m.reported is None:
            if hides:
                return Finding(
                    self.id,
                    Verdict.WARN,
                    f"No reported metric given; on {m.split}, {hidden}.",
                    metrics=tuple(metrics),
                    tables=(table,),
                    effects=(supports("metric_bug", Strength.MODERATE, hidden),),
                    next_step="Report balanced accuracy or macro F1 next to accuracy.",
                )
            return Finding(
                self.id,
                Verdict.PASS,
                f"No reported metric given (--reported-metric); recomputed {m.split} accuracy is "
                f"{m.accuracy:.1%} over {m.n} examples.",
                metrics=tuple(metrics),
                tables=(table,),
            )
        reported = m.reported / 100 if m.reported > 1 else m.reported
        scale_note = " (read as a percentage)" if m.reported > 1 else ""
        metrics.insert(0, Metric("reported metric", reported, key="reported_metric"))
        diff = reported - m.accuracy
        metrics.append(Metric("reported - recomputed", diff))
        if abs(diff) <= tol:
            if hides:
                return Finding(
                    self.id,
                    Verdict.FAIL,
                    f"The reported {reported:.3f}{scale_note} is accuracy on {m.split}, but "
                    f"{hidden}: the metric hides the failure.",
                    metrics=tuple(metrics),
                    tables=(table,),
                    effects=(
                        supports(
                            "metric_bug",
                            Strength.STRONG,
                            f"reported accuracy {reported:.3f}; {hidden}",
                        ),
                    ),
                    next_step="Report balanced accuracy / macro F1 and per-class recall.",
                )
            return Finding(
                self.id,
                Verdict.PASS,
                f"The reported {reported:.3f}{scale_note} matches the recomputed {m.split} "
                f"accuracy {m.accuracy:.3f} (within ±{tol:.3f}).",
                metrics=tuple(metrics),
                tables=(table,),
                effects=(
                    refutes(
                        "metric_bug",
                        Strength.MODERATE,
                        f"reported {reported:.3f} = recomputed accuracy {m.accuracy:.3f}",
                    ),
                ),
            )
        def allowed(c: Candidate) -> float:
            # A train-mode accuracy is random (dropout): the user's run and ours are two draws,
            # so they differ by sampling noise even over the whole split.
            if not c.name.startswith(TRAIN_MODE):
                return tol
            p = min(max(c.value, 1e-3), 1 - 1e-3)
            return tol + th.z * math.sqrt(2 * p * (1 - p) / max(m.n, 1))

        near = sorted(m.candidates, key=lambda c: abs(c.value - reported) / allowed(c))
        match = near[0] if near and abs(near[0].value - reported) <= allowed(near[0]) else None
        why = (
            f"it matches the {match.name} ({match.value:.3f})"
            if match
            else "it matches none of top-k accuracy, error rate, balanced accuracy, macro F1, "
            "train accuracy or skipped-item counting"
        )
        what = (
            f"reported {reported:.3f}{scale_note} vs recomputed {m.split} accuracy "
            f"{m.accuracy:.3f} (±{tol:.3f}); {why}"
        )
        # The eval_mode check's own match (train-mode passes at each batch size, with their
        # measured spread): a number it explains is computed right, in the wrong mode.
        mode_match = (
            train_mode_match(m.eval_mode, EvalModeThresholds()) if m.eval_mode else None
        )
        if mode_match is not None and (match is None or match.name.startswith(TRAIN_MODE)):
            what = (
                f"reported {reported:.3f}{scale_note} vs recomputed {m.split} accuracy "
                f"{m.accuracy:.3f} (±{tol:.3f}); it is the {TRAIN_MODE} at batch "
                f"{mode_match.batch} ({mode_match.accuracy:.3f})"
            )
            effects = (supports("eval_mode_bug", Strength.MODERATE, what),)
        else:
            loose = match is not None and match.name.startswith(TRAIN_MODE)
            effects = (
                supports("metric_bug", Strength.MODERATE if loose else Strength.STRONG, what),
            )
        return Finding(
            self.id,
            Verdict.FAIL,
            f"The reported metric does not match the predictions: {what}.",
            metrics=tuple(metrics),
            tables=(table,),
            # A number that is train-mode accuracy is an eval-mode bug, not a wrong formula:
            # metric_bug would be its consequence, never a cause to rank beside it.
            effects=effects,
            next_step="Recompute the metric as top-1 accuracy on the eval split in eval mode, "
            "from the same checkpoint; compare with the explanation above.",
        )
