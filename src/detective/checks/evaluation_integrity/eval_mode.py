"""Is the model really evaluated in eval mode? On a private copy: which modules stay in training
mode after `.eval()`, whether two eval-mode passes over the same images agree, and how much
train-mode predictions (dropout on, batch-norm on batch statistics) differ from eval-mode ones."""

from __future__ import annotations

import math
from dataclasses import dataclass

from detective.analysis.measures import EvalModeStats, TrainModeAccuracy, reported_fraction
from detective.core.budget import CaseSize, Cost
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

    def cost(self, size: CaseSize) -> Cost:
        """Three passes (eval twice, train once) over the provider's sample of the eval split;
        the batch-size sweep run only when a reported metric differs from eval-mode accuracy
        is not planned (the plan cannot know it)."""
        from detective.analysis.measures import EvalModeSettings

        n = min(size.sample, EvalModeSettings().sample, size.val_n or size.test_n)
        return Cost(forward_items=3 * n)

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
        ) + (
            (
                Table(
                    "train-mode accuracy by batch size (the split in order, seeded passes)",
                    ("batch", "accuracy", "sd of one pass", "passes"),
                    tuple(
                        (s.batch, round(s.accuracy, 4), round(s.draw_sd, 4), s.draws)
                        for s in m.train_mode_sweep
                    ),
                    key="train_mode_sweep",
                ),
            )
            if m.train_mode_sweep
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
        if m.reported_metric is not None:
            match = train_mode_match(m, th)
            if match is not None:
                reported = reported_fraction(m.reported_metric)
                reasons.append(
                    f"the reported metric {reported:.3f} matches train-mode accuracy at batch "
                    f"{match.batch} ({match.accuracy:.3f} ± {match.draw_sd:.3f} over "
                    f"{match.draws} passes), not eval-mode accuracy {m.eval_accuracy:.3f}"
                )
        notes: tuple[str, ...] = ()
        if m.train_mode_sweep and 0 < m.n < m.split_size:
            notes = (
                f"train mode measured on {m.n} of the split's {m.split_size} items: batches hold "
                "other items than the user's loop saw (batch-norm statistics differ a little)",
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
                notes=notes,
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
            tables=tables,
            notes=notes,
            effects=(
                refutes(
                    "eval_mode_bug",
                    Strength.MODERATE if m.stochastic_modules else Strength.WEAK,
                    "eval() takes effect and eval-mode predictions are deterministic",
                ),
            ),
        )


def train_mode_match(m: EvalModeStats, th: EvalModeThresholds) -> TrainModeAccuracy | None:
    """The train-mode accuracy (at some batch size) the reported metric is, within the noise of
    two passes; None when it is the eval-mode accuracy, or none matches (another bug).

    Noise: the reported number is one train-mode pass over the split; ours is the mean of R
    seeded passes, so the two differ by sd·√(1 + 1/R) (sd measured per item from the passes),
    plus item sampling when we predicted only a sample of the split, plus rounding."""
    if m.reported_metric is None or not m.n:
        return None
    reported = reported_fraction(m.reported_metric)
    fpc = max(0.0, 1 - m.n / m.split_size) if m.split_size else 1.0

    def sampling(p: float) -> float:
        p = min(max(p, 1e-3), 1 - 1e-3)
        return p * (1 - p) / m.n * fpc

    sweep = m.train_mode_sweep
    if not sweep:  # stored before the sweep was measured: one pass at two batch sizes
        sweep = tuple(
            TrainModeAccuracy(b, a, math.sqrt(sampling(a) / max(fpc, 1e-9)), 1)
            for b, a in ((0, m.train_mode_accuracy), (8, m.small_batch_train_mode_accuracy))
            if a is not None
        )
    to_eval = abs(reported - m.eval_accuracy)
    if to_eval <= max(th.min_mode_gap, th.metric_tolerance + th.z * math.sqrt(
        sampling(m.eval_accuracy)
    )):
        return None

    def band(s: TrainModeAccuracy) -> float:
        return th.metric_tolerance + th.z * math.sqrt(
            s.draw_sd**2 * (1 + 1 / max(s.draws, 1)) + sampling(s.accuracy)
        )

    within = [s for s in sweep if abs(reported - s.accuracy) <= band(s)]
    return min(within, key=lambda s: abs(reported - s.accuracy) / band(s), default=None)
