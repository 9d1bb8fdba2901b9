"""Is the model really evaluated in eval mode? On a private copy: which modules stay in training
mode after `.eval()`, whether two eval-mode passes over the same images agree, and how much
train-mode predictions (dropout on, batch-norm on batch statistics) differ from eval-mode ones."""

from __future__ import annotations

import math
from dataclasses import dataclass

from detective.analysis.measures import EvalModeStats
from detective.core.findings import Finding, Metric, Strength, Table, Verdict, refutes, supports
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register


@dataclass(frozen=True)
class EvalModeThresholds:
    max_repeat_disagreement: float = 0.0  # eval mode must be deterministic
    metric_tolerance: float = 0.01  # |reported - accuracy| that counts as "matches"
    min_mode_gap: float = 0.02  # train- and eval-mode accuracy must differ this much to tell
    z: float = 3.0  # sampling-noise band (in standard errors) of "matches train-mode accuracy"


EvalModeMeasurement = EvalModeStats  # measured by the shared provider (metric_recompute reads it)


@register
class EvalMode(Check[EvalModeMeasurement]):
    id = "eval_mode"
    title = "Evaluation in eval mode"
    stage = Stage.EVALUATION_INTEGRITY
    description = (
        "On a copy of the model: modules still training after .eval(), agreement of two eval-mode "
        "passes, and train-mode vs eval-mode predictions (and which one the reported metric "
        "matches)."
    )
    hypotheses = ("eval_mode_bug",)
    measurement_type = EvalModeStats
    thresholds_type = EvalModeThresholds
    uses = (EvalModeStats,)

    def measure(self, ctx, progress) -> EvalModeStats:
        return ctx.shared(EvalModeStats, progress)

    def judge(self, m: EvalModeMeasurement) -> Finding:
        th = self.thresholds
        metrics = (
            Metric("examples", m.n),
            Metric("dropout/batch-norm modules", m.stochastic_modules),
            Metric("still training after eval()", len(m.stuck_in_training)),
            Metric("eval-mode repeat disagreement", m.eval_repeat_disagreement, "fraction"),
            Metric("train- vs eval-mode disagreement", m.train_eval_disagreement, "fraction"),
            Metric("accuracy, eval mode", m.eval_accuracy),
            Metric("accuracy, train mode", m.train_mode_accuracy),
        )
        tables = (
            (
                Table(
                    "modules still in training mode after .eval()",
                    ("module",),
                    tuple((s,) for s in m.stuck_in_training),
                ),
            )
            if m.stuck_in_training
            else ()
        )
        reasons = []
        if m.stuck_in_training:
            reasons.append(
                f"{len(m.stuck_in_training)} dropout/batch-norm module(s) stay in training mode "
                f"after .eval() ({', '.join(m.stuck_in_training[:4])})"
            )
        if m.eval_repeat_disagreement > th.max_repeat_disagreement:
            reasons.append(
                f"two eval-mode passes over the same images disagree on "
                f"{m.eval_repeat_disagreement:.1%} of predictions"
            )
        train_accs = [m.train_mode_accuracy]
        if m.small_batch_train_mode_accuracy is not None:
            train_accs.append(m.small_batch_train_mode_accuracy)
        if m.reported_metric is not None:
            reported = m.reported_metric / 100 if m.reported_metric > 1 else m.reported_metric
            to_eval = abs(reported - m.eval_accuracy)
            # Train-mode accuracy is random (dropout, batch statistics): the user's run and ours
            # are two draws, so "matches" means within their sampling noise, never "closer to
            # train mode than to eval mode" (a metric far below both is some other bug).
            noise = th.metric_tolerance + max(
                th.z * math.sqrt(2 * p * (1 - p) / max(m.n, 1))
                for p in (min(max(a, 1e-3), 1 - 1e-3) for a in train_accs)
            )
            # The batch size of the user's loop is unknown: batch 8 or the case's eval batch,
            # each measured; a number merely between them is not a match.
            to_train = min(abs(reported - a) for a in train_accs)
            if to_eval > max(th.min_mode_gap, noise) and to_train <= noise:
                reasons.append(
                    f"the reported metric {reported:.3f} matches train-mode accuracy "
                    f"({', '.join(f'{a:.3f}' for a in train_accs)}), not eval-mode accuracy "
                    f"{m.eval_accuracy:.3f}"
                )
        if reasons:
            what = "; ".join(reasons)
            return Finding(
                self.id,
                Verdict.FAIL,
                f"The model is evaluated in training mode: {what}.",
                metrics=metrics,
                tables=tables,
                effects=(supports("eval_mode_bug", Strength.STRONG, what),),
                next_step="Call model.eval() before evaluating and do not override eval()/train(); "
                "use nn.Dropout modules (not F.dropout(training=True)); re-measure.",
            )
        return Finding(
            self.id,
            Verdict.PASS,
            f"eval() switches every dropout/batch-norm module off and eval-mode predictions are "
            f"deterministic; in train mode {m.train_eval_disagreement:.1%} of predictions would "
            f"change (accuracy {m.eval_accuracy:.1%} → {m.train_mode_accuracy:.1%}).",
            metrics=metrics,
            effects=(
                refutes(
                    "eval_mode_bug",
                    Strength.MODERATE if m.stochastic_modules else Strength.WEAK,
                    "eval() takes effect and eval-mode predictions are deterministic",
                ),
            ),
        )
