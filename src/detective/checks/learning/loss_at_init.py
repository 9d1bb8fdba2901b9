"""Loss at initialisation: a fresh model's loss should be about ln(K) for K classes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from detective.core.budget import CaseSize, Cost
from detective.core.findings import Finding, Metric, Strength, Verdict, refutes, supports
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register


@dataclass(frozen=True)
class InitThresholds:
    tolerance: float = 0.25  # |loss / ln K - 1| within this: as expected
    far: float = 2.0  # loss / ln K beyond this factor (or below its inverse): not a CE over logits
    bad_label_share: float = 0.02  # sampled labels outside 0..K-1


@dataclass(frozen=True)
class InitMeasurement:
    items: int
    num_classes: int
    output_shape: tuple[int, ...]
    loss: float  # the recipe's loss on the fresh model's outputs
    logits_ce: float  # cross-entropy of the same outputs, read as logits
    label_entropy: float  # entropy of the sampled labels (the best constant predictor's loss)
    sampled: int
    labels_out_of_range: int
    loss_name: str
    loss_error: str = ""  # the loss raised on (outputs, labels)


def _same_as_logits(m: InitMeasurement, tolerance: float) -> bool:
    """The recipe's loss equals the cross-entropy of the outputs read as logits."""
    return math.isfinite(m.logits_ce) and m.logits_ce > 0 and (
        abs(m.loss / m.logits_ce - 1) <= tolerance
    )


@register
class LossAtInit(Check[InitMeasurement]):
    id = "loss_at_init"
    title = "Loss at initialisation"
    stage = Stage.LEARNING
    description = (
        "A freshly initialised model should score about ln(K) with a cross-entropy loss "
        "(2.303 for 10 classes); far off means the loss, the output layer or the labels are "
        "not what you think."
    )
    hypotheses = ("wrong_loss", "label_misalignment", "exploding_gradients")
    needs_trained_model = False  # a fresh model and the recipe
    measurement_type = InitMeasurement
    thresholds_type = InitThresholds

    def cost(self, size: CaseSize) -> Cost:
        from detective.core import budget

        return Cost(forward_items=size.eval_batch, shared=(budget.learning_sample(size),))

    def measure(self, ctx, progress) -> InitMeasurement:
        import torch
        import torch.nn.functional as F  # noqa: N812

        from detective.analysis.learning import recipe
        from detective.analysis.training import make_loss

        data = recipe.learning_data(ctx)
        x, y = data.x_fit[:256], data.y_fit[:256]
        model = ctx.fresh_model()
        loss_fn = make_loss(ctx)
        model.train()  # batch statistics, as in the first training step
        progress.update(0.5)
        with torch.no_grad():
            out = model(x)
            try:
                loss, error = float(loss_fn(out, y)), ""
            except Exception as e:  # the user's loss refusing the outputs is the finding
                loss, error = math.nan, f"{type(e).__name__}: {e}"
            ce = (
                float(F.cross_entropy(out.float(), y))
                if out.ndim == 2 and out.shape[1] == ctx.case.num_classes
                else math.nan
            )
        counts = torch.bincount(data.y_fit, minlength=ctx.case.num_classes).double()
        p = counts[counts > 0] / counts.sum()
        progress.update(1.0)
        return InitMeasurement(
            items=len(y),
            num_classes=ctx.case.num_classes,
            output_shape=tuple(out.shape[1:]),
            loss=loss,
            logits_ce=ce,
            label_entropy=float(-(p * p.log()).sum()),
            sampled=data.sampled,
            labels_out_of_range=data.label_problems,
            loss_name=type(loss_fn).__name__,
            loss_error=error[:300],
        )

    def judge(self, m: InitMeasurement) -> Finding:
        th = self.thresholds
        ln_k = math.log(m.num_classes)
        ratio = m.loss / ln_k
        bad_share = m.labels_out_of_range / m.sampled if m.sampled else 0.0
        metrics = (
            Metric("loss at init", m.loss, "", m.loss_name),
            Metric("expected ln(K)", ln_k),
            Metric("loss / ln(K)", ratio, "×"),
            Metric("cross-entropy of the outputs as logits", m.logits_ce),
            Metric("label entropy (best constant predictor)", m.label_entropy),
            Metric("labels outside 0..K-1", m.labels_out_of_range, "", f"of {m.sampled} sampled"),
        )
        notes = ("Measured on a fresh, untrained model; your model is untouched.",)
        effects, problems = [], []
        if bad_share > th.bad_label_share:
            why = (
                f"{m.labels_out_of_range} of {m.sampled} sampled labels ({bad_share:.0%}) lie "
                f"outside 0..{m.num_classes - 1}: labels are offset (1-based?) or belong to "
                "another class list"
            )
            problems.append(why)
            effects.append(supports("label_misalignment", Strength.STRONG, why))
        if m.output_shape != (m.num_classes,):
            why = (
                f"the model outputs shape {list(m.output_shape)} per image, not "
                f"[{m.num_classes}] (one score per class)"
            )
            problems.append(why)
            effects.append(supports("wrong_loss", Strength.MODERATE, why))
        if not math.isfinite(m.loss):
            why = (
                f"the loss raises on the model's outputs and labels ({m.loss_error})"
                if m.loss_error
                else f"the loss at init is {m.loss}"
            )
            problems.append(why)
            effects.append(supports("wrong_loss", Strength.STRONG, why))
        elif ratio > th.far or ratio < 1 / th.far:
            as_logits = (
                f"; read as logits the same outputs give {m.logits_ce:.3g}"
                if math.isfinite(m.logits_ce)
                else ""
            )
            why = (
                f"the loss at init is {m.loss:.3g}, {ratio:.2g}× the ln(K) = {ln_k:.3f} a "
                f"cross-entropy over {m.num_classes} classes starts at{as_logits}"
            )
            problems.append(why)
            if ratio > th.far and _same_as_logits(m, th.tolerance):
                # The loss IS a cross-entropy over these outputs as logits: the loss is fine,
                # the fresh model's outputs are huge. Signal that grows layer by layer from the
                # init is what exploding gradients start from (the init, not the loss).
                # Strong: unambiguous on a fresh model, and only an intervention (He init) can
                # make it a verified cause; a short window of finite gradients (gradient_flow)
                # does not cancel it, as a blow-up comes later in training.
                effects.append(supports(
                    "exploding_gradients", Strength.STRONG,
                    why + ": the loss is a cross-entropy over logits that the fresh model makes "
                    "huge (an init scale that grows the signal through the layers)",
                ))
            else:
                # A different loss can be legitimate (focal, MSE on one-hot): moderate.
                effects.append(supports("wrong_loss", Strength.MODERATE, why))
        elif abs(ratio - 1) <= th.tolerance:
            effects.append(
                refutes(
                    "wrong_loss", Strength.WEAK, f"loss at init {m.loss:.3g} ≈ ln(K) = {ln_k:.3f}"
                )
            )
        else:
            problems.append(
                f"the loss at init is {m.loss:.3g}, {ratio:.2g}× ln(K) = {ln_k:.3f} "
                "(over-confident initial outputs?)"
            )
        if not bad_share and not problems:
            effects.append(
                refutes(
                    "label_misalignment",
                    Strength.WEAK,
                    "every sampled label is a valid class index",
                )
            )
        strong = any(
            e.strength is Strength.STRONG and e.direction.value == "supports" for e in effects
        )
        verdict = Verdict.FAIL if strong else Verdict.WARN if problems else Verdict.PASS
        summary = (
            "Loss at init: " + "; ".join(problems) + "."
            if problems
            else f"Loss at init {m.loss:.3f} ≈ ln({m.num_classes}) = {ln_k:.3f}, as expected."
        )
        return Finding(
            self.id,
            verdict,
            summary,
            metrics=metrics,
            effects=tuple(effects),
            notes=notes,
            next_step=(
                "Check the label encoding (0..K-1, in CLASSES order), the output layer's "
                "size, and that the loss takes raw logits."
                if problems
                else ""
            ),
        )
