"""Is the model really evaluated in eval mode? On a private copy: which modules stay in training
mode after `.eval()`, whether two eval-mode passes over the same images agree, and how much
train-mode predictions (dropout on, batch-norm on batch statistics) differ from eval-mode ones."""

from __future__ import annotations

from dataclasses import dataclass

from detective.findings import Finding, Metric, Strength, Table, Verdict, refutes, supports
from detective.hypotheses import Stage
from detective.registry import Check, register


@dataclass(frozen=True)
class EvalModeThresholds:
    sample: int = 256
    max_repeat_disagreement: float = 0.0  # eval mode must be deterministic
    metric_tolerance: float = 0.01  # |reported - accuracy| that counts as "matches"
    min_mode_gap: float = 0.02  # train- and eval-mode accuracy must differ this much to tell


@dataclass(frozen=True)
class EvalModeMeasurement:
    split: str
    n: int
    stuck_in_training: tuple[str, ...]  # dropout / batch-norm modules still training after eval()
    stochastic_modules: int  # dropout + batch-norm modules in the model
    eval_repeat_disagreement: float  # two eval-mode passes, same images, different seeds
    train_eval_disagreement: float
    eval_accuracy: float
    train_mode_accuracy: float
    reported_metric: float | None


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
    measurement_type = EvalModeMeasurement
    thresholds_type = EvalModeThresholds

    def measure(self, ctx, progress) -> EvalModeMeasurement:
        import torch

        from detective.erroranalysis import eval_split

        progress.update(0.0)
        split = eval_split(ctx)
        idx = ctx.sample_indices(split, min(ctx.options.sample, self.thresholds.sample))
        x, y, _ = ctx.tensors(split, idx)
        model = ctx.model_copy()  # never touch the shared model: train() below changes BN stats
        kinds = (torch.nn.modules.dropout._DropoutNd, torch.nn.modules.batchnorm._BatchNorm)
        stochastic = [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]
        model.eval()
        stuck = tuple(n or type(m).__name__ for n, m in stochastic if m.training)
        bs = ctx.case.eval_settings.batch_size

        def predict(seed: int) -> torch.Tensor:
            torch.manual_seed(seed)
            out = []
            with torch.no_grad():
                for start in range(0, len(x), bs):
                    progress.check_cancelled()
                    logits = model(x[start : start + bs])
                    if isinstance(logits, tuple | list):
                        logits = logits[0]
                    out.append(logits.argmax(1))
            return torch.cat(out)

        a = predict(0)
        progress.update(0.3)
        b = predict(1)
        progress.update(0.6)
        model.train()
        t = predict(2)
        progress.update(1.0)
        n = len(y)
        return EvalModeMeasurement(
            split=split,
            n=n,
            stuck_in_training=stuck[:20],
            stochastic_modules=len(stochastic),
            eval_repeat_disagreement=float((a != b).float().mean()) if n else 0.0,
            train_eval_disagreement=float((a != t).float().mean()) if n else 0.0,
            eval_accuracy=float((a == y).float().mean()) if n else 0.0,
            train_mode_accuracy=float((t == y).float().mean()) if n else 0.0,
            reported_metric=ctx.options.reported_metric,
        )

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
        mode_gap = abs(m.train_mode_accuracy - m.eval_accuracy)
        if (
            m.reported_metric is not None
            and mode_gap >= th.min_mode_gap
            and abs(m.reported_metric - m.train_mode_accuracy) <= th.metric_tolerance
            and abs(m.reported_metric - m.eval_accuracy) > th.metric_tolerance
        ):
            reasons.append(
                f"the reported metric {m.reported_metric:.3f} matches train-mode accuracy "
                f"{m.train_mode_accuracy:.3f}, not eval-mode accuracy {m.eval_accuracy:.3f}"
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
