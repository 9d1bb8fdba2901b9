"""Does the loss fit the task and the model's outputs? Double softmax, MSE on class indices,
label smoothing / class weights that do not match K, targets out of range."""

from __future__ import annotations

import math
from dataclasses import dataclass

from detective.core.budget import CaseSize, Cost
from detective.core.findings import Finding, Metric, Strength, Verdict, refutes, supports
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register

_REGRESSION = ("MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss")
_LOGIT_LOSSES = ("CrossEntropyLoss", "BCEWithLogitsLoss", "MultiLabelSoftMarginLoss")


@dataclass(frozen=True)
class TaskThresholds:
    prob_rows: float = 0.99  # share of output rows that look like probabilities
    max_weight_ratio: float = 100.0  # class weights spanning more than this: suspicious


@dataclass(frozen=True)
class TaskMeasurement:
    items: int
    num_classes: int
    loss_name: str
    output_dim: int
    prob_rows: float  # rows in [0,1] summing to 1 (a softmax was applied)
    unit_rows: float  # rows entirely in [0,1] (a sigmoid was applied)
    logprob_rows: float  # rows whose exp sums to 1 (log-softmax outputs)
    loss_value: float
    loss_as_logits_ce: float  # F.cross_entropy of the same outputs: equal → the loss softmaxes
    label_smoothing: float  # -1 when not a CrossEntropyLoss
    class_weights: tuple[float, ...]
    targets_out_of_range: int
    sampled: int


@dataclass(frozen=True)
class LossProblem:
    strength: Strength
    what: str
    fix: str


@register
class LossFitsTask(Check[TaskMeasurement]):
    id = "loss_fits_task"
    title = "Loss fits the task"
    stage = Stage.LEARNING
    description = (
        "Inspects the model's outputs and the loss: a softmax/sigmoid before a loss that expects "
        "logits, MSE on class indices, label smoothing or class weights that do not match the "
        "number of classes, targets out of range."
    )
    hypotheses = ("wrong_loss",)
    measurement_type = TaskMeasurement
    thresholds_type = TaskThresholds

    def cost(self, size: CaseSize) -> Cost:
        from detective.core import budget

        return Cost(forward_items=size.eval_batch, shared=(budget.learning_sample(size),))

    def measure(self, ctx, progress) -> TaskMeasurement:
        import torch
        import torch.nn.functional as F  # noqa: N812

        from detective.analysis.learning import recipe
        from detective.analysis.training import make_loss

        data = recipe.learning_data(ctx)
        x, y = data.x_fit[:256], data.y_fit[:256]
        model = ctx.model_copy()
        loss_fn = make_loss(ctx)
        progress.update(0.3)
        with torch.no_grad():
            out = model.eval()(x).float()
            flat = out.reshape(len(out), -1)
            in_unit = ((flat >= -1e-6) & (flat <= 1 + 1e-6)).all(1)
            sums = flat.sum(1)
            prob = (in_unit & ((sums - 1).abs() < 1e-3)).float().mean()
            logprob = (((flat <= 1e-6).all(1)) & ((flat.exp().sum(1) - 1).abs() < 1e-3)).float()
            try:
                value = float(loss_fn(out, y))
            except Exception:  # a regression loss on (N,K) vs (N,) can refuse the shapes
                value = math.nan
            ce = (
                float(F.cross_entropy(out, y))
                if out.ndim == 2 and out.shape[1] == ctx.case.num_classes
                else math.nan
            )
        smoothing = (
            float(getattr(loss_fn, "label_smoothing", -1.0))
            if isinstance(loss_fn, torch.nn.CrossEntropyLoss)
            else -1.0
        )
        weight = getattr(loss_fn, "weight", None)
        weights = (
            tuple(float(w) for w in weight.flatten()) if isinstance(weight, torch.Tensor) else ()
        )
        progress.update(1.0)
        return TaskMeasurement(
            items=len(y),
            num_classes=ctx.case.num_classes,
            loss_name=type(loss_fn).__name__,
            output_dim=int(flat.shape[1]),
            prob_rows=float(prob),
            unit_rows=float(in_unit.float().mean()),
            logprob_rows=float(logprob.mean()),
            loss_value=value,
            loss_as_logits_ce=ce,
            label_smoothing=smoothing,
            class_weights=weights,
            targets_out_of_range=data.label_problems,
            sampled=data.sampled,
        )

    def judge(self, m: TaskMeasurement) -> Finding:
        return self.present(m, self.assess(m))

    def assess(self, m: TaskMeasurement) -> tuple[LossProblem, ...]:
        """Every way the loss does not fit the outputs (thresholds only here)."""
        th = self.thresholds
        k = m.num_classes
        loss_softmaxes = m.loss_name == "CrossEntropyLoss" or (
            math.isfinite(m.loss_value)
            and math.isfinite(m.loss_as_logits_ce)
            and abs(m.loss_value - m.loss_as_logits_ce) < 1e-4 * max(1.0, m.loss_value)
        )
        problems: list[tuple[Strength, str, str]] = []  # (strength, what, fix)
        if m.prob_rows >= th.prob_rows and loss_softmaxes:
            problems.append(
                (
                    Strength.STRONG,
                    f"the model's outputs are already probabilities ({m.prob_rows:.0%} of rows "
                    f"are in [0,1] and sum to 1) and {m.loss_name} applies its own softmax: a "
                    "double softmax flattens the gradients and puts a floor under the loss",
                    "remove the final Softmax from the model (apply it only at inference), or use "
                    "NLLLoss on log_softmax outputs",
                )
            )
        elif m.prob_rows >= th.prob_rows and m.loss_name == "NLLLoss":
            problems.append(
                (
                    Strength.STRONG,
                    "NLLLoss gets probabilities, not log-probabilities",
                    "end the model with LogSoftmax (or use CrossEntropyLoss on logits)",
                )
            )
        elif (
            m.unit_rows >= th.prob_rows
            and m.loss_name in _LOGIT_LOSSES
            and m.prob_rows < 0.5
            and m.logprob_rows < 0.5
        ):
            problems.append(
                (
                    Strength.STRONG,
                    f"every output is in [0,1] (a sigmoid?) but {m.loss_name} expects raw logits",
                    "drop the final sigmoid and keep the logits for the loss",
                )
            )
        if m.loss_name in _REGRESSION or (m.output_dim == 1 and k > 2):
            problems.append(
                (
                    Strength.STRONG,
                    f"a regression loss ({m.loss_name}, {m.output_dim} output(s)) on class "
                    "indices treats classes as ordered numbers (class 9 is 'near' 8)",
                    f"output {k} logits and use CrossEntropyLoss",
                )
            )
        elif m.output_dim != k:
            problems.append(
                (
                    Strength.MODERATE,
                    f"the model outputs {m.output_dim} values per image for {k} classes",
                    f"make the head output exactly {k} logits",
                )
            )
        if m.label_smoothing >= (k - 1) / k:
            problems.append(
                (
                    Strength.STRONG,
                    f"label_smoothing={m.label_smoothing:g} ≥ (K-1)/K = {(k - 1) / k:.2f}"
                    ": the target is uniform, nothing can be learned",
                    "use a small smoothing such as 0.1",
                )
            )
        elif m.label_smoothing > 0.5:
            problems.append(
                (
                    Strength.MODERATE,
                    f"label_smoothing={m.label_smoothing:g} is very heavy for {k} classes",
                    "use a small smoothing such as 0.1",
                )
            )
        if m.class_weights and len(m.class_weights) != k:
            problems.append(
                (
                    Strength.STRONG,
                    f"{len(m.class_weights)} class weights for {k} classes",
                    f"give exactly {k} weights, in CLASSES order",
                )
            )
        elif m.class_weights:
            lo, hi = min(m.class_weights), max(m.class_weights)
            if lo <= 0 or hi / lo > th.max_weight_ratio:
                problems.append(
                    (
                        Strength.MODERATE,
                        f"class weights span {lo:.3g}..{hi:.3g}",
                        "weights ∝ 1/frequency, capped, usually suffice",
                    )
                )
        if m.targets_out_of_range:
            problems.append(
                (
                    Strength.MODERATE,
                    f"{m.targets_out_of_range} of {m.sampled} sampled targets are "
                    f"outside 0..{k - 1}",
                    "map labels to 0..K-1 in CLASSES order",
                )
            )
        return tuple(LossProblem(*p) for p in problems)

    def present(self, m: TaskMeasurement, problems: tuple[LossProblem, ...]) -> Finding:
        k = m.num_classes
        metrics = (
            Metric("output rows that are probabilities", m.prob_rows, "fraction"),
            Metric("output rows in [0, 1]", m.unit_rows, "fraction"),
            Metric("output rows that are log-probabilities", m.logprob_rows, "fraction"),
            Metric("loss on the trained model", m.loss_value, "", m.loss_name),
            Metric("cross-entropy of the outputs as logits", m.loss_as_logits_ce),
            Metric("targets outside 0..K-1", m.targets_out_of_range, "", f"of {m.sampled}"),
        )
        notes = ("Outputs inspected on a copy of your trained model; nothing is changed.",)
        if not problems:
            return Finding(
                self.id,
                Verdict.PASS,
                f"The loss ({m.loss_name}) fits the outputs: {k} raw scores per image, no softmax "
                "or sigmoid before a logits loss, targets in range.",
                metrics=metrics,
                notes=notes,
                effects=(
                    refutes(
                        "wrong_loss",
                        Strength.MODERATE,
                        "outputs are logits of the right size for a logits loss",
                    ),
                ),
            )
        return self.finding(
            "The loss does not fit: " + "; ".join(p.what for p in problems) + ".",
            metrics=metrics,
            notes=notes,
            effects=tuple(supports("wrong_loss", p.strength, p.what) for p in problems),
            next_step="Fix: " + "; ".join(p.fix for p in problems) + ".",
        )
