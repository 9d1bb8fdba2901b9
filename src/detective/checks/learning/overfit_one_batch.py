"""Overfit one batch: a healthy setup memorises one small fixed batch (loss ~0, accuracy 100 %)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from detective.core.budget import CaseSize, Cost, Knob
from detective.core.findings import Artifact, Finding, Metric, Strength, Verdict, refutes, supports
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register


@dataclass(frozen=True)
class OverfitThresholds:
    stuck_fraction: float = 0.9  # loss still above this share of the initial: nothing learned
    floor_fraction: float = 0.5  # all items right but the loss stays above this share: a floor


@dataclass(frozen=True)
class OverfitSettings:
    """How much learning_overfit measures (read by measure only)."""

    batch: int = 32
    max_steps: int = 150
    fit_loss_fraction: float = 0.1  # fitted: loss ≤ this share of the initial loss …
    # … and accuracy on the batch 100 %


@dataclass(frozen=True)
class OverfitMeasurement:
    batch: int
    max_steps: int
    steps: int
    losses: tuple[float, ...]
    initial_loss: float
    final_loss: float
    final_accuracy: float  # eval mode, on the batch
    fitted_at: int  # step at which the batch was fitted, -1 if never
    recipe: str
    lr: float
    artifact: str = ""


@register
class OverfitOneBatch(Check[OverfitMeasurement]):
    id = "overfit_one_batch"
    title = "Overfit one batch"
    stage = Stage.LEARNING
    description = (
        "Trains a fresh copy of the model with your recipe on one fixed batch of 32 images; a "
        "healthy setup drives the loss near zero and the batch accuracy to 100 %."
    )
    hypotheses = ("underfitting", "wrong_loss", "frozen_parameters", "label_misalignment")
    needs_trained_model = False  # a fresh model and the recipe
    measurement_type = OverfitMeasurement
    thresholds_type = OverfitThresholds
    settings_type = OverfitSettings

    shrinkable = (Knob("max_steps", 50),)

    def cost(self, size: CaseSize) -> Cost:
        from detective.core import budget

        share = min(self.settings.batch, size.train_n) / max(1, size.train_batch)
        return Cost(
            train_steps=self.settings.max_steps * share, shared=(budget.learning_sample(size),)
        )

    def measure(self, ctx, progress) -> OverfitMeasurement:
        from detective.analysis.learning import plots, recipe

        st = self.settings
        data = recipe.learning_data(ctx)
        xb, yb = data.x_fit[: st.batch], data.y_fit[: st.batch]
        model = ctx.fresh_model()
        state = {"fitted": -1, "first": math.nan}

        def stop(step: int, loss: float) -> bool:
            if step == 0:
                state["first"] = loss
            if (step + 1) % 10 or not loss <= st.fit_loss_fraction * state["first"]:
                return False
            if recipe.evaluate_tensors(model, xb, yb)[1] >= 1.0:
                state["fitted"] = step + 1
                return True
            return False

        trace = recipe.run_recipe(
            ctx, model, xb, yb, steps=st.max_steps, progress=progress, batch_size=len(yb), stop=stop
        )
        _, acc = recipe.evaluate_tensors(model, xb, yb)
        path, rel = ctx.artifact(self.id, "loss.png")
        plots.line_plot(
            path,
            [("loss on the batch", range(1, len(trace.losses) + 1), trace.losses)],
            title=f"Overfitting one batch of {len(yb)}",
            xlabel="step",
            ylabel="loss",
            logy=all(v > 0 for v in trace.losses if math.isfinite(v)),
        )
        return OverfitMeasurement(
            batch=len(yb),
            max_steps=st.max_steps,
            steps=len(trace.losses),
            losses=trace.losses,
            initial_loss=trace.losses[0] if trace.losses else math.nan,
            final_loss=trace.losses[-1] if trace.losses else math.nan,
            final_accuracy=acc,
            fitted_at=state["fitted"],
            recipe=trace.recipe,
            lr=trace.lr,
            artifact=rel,
        )

    def judge(self, m: OverfitMeasurement) -> Finding:
        th = self.thresholds
        ratio = m.final_loss / m.initial_loss if m.initial_loss > 0 else math.nan
        metrics = (
            Metric("batch size", m.batch),
            Metric("steps run", m.steps),
            Metric("steps to fit", m.fitted_at, "steps", "-1: never within the budget"),
            Metric("initial loss", m.initial_loss),
            Metric("final loss", m.final_loss),
            Metric("final / initial loss", ratio),
            Metric("batch accuracy", m.final_accuracy, "fraction"),
        )
        art = (
            (Artifact("overfit_loss", m.artifact, "loss on the single batch"),)
            if m.artifact
            else ()
        )
        notes = (
            f"A fresh copy of the model, your recipe ({m.recipe}, LR {m.lr:g}), "
            "one fixed batch; your model and files are untouched.",
        )
        if m.fitted_at > 0:
            return Finding(
                self.id,
                Verdict.PASS,
                f"The recipe memorises one batch of {m.batch} in {m.fitted_at} steps (loss "
                f"{m.initial_loss:.3g} → {m.final_loss:.3g}, accuracy {m.final_accuracy:.0%}).",
                metrics=metrics,
                artifacts=art,
                notes=notes,
                effects=(
                    refutes("wrong_loss", Strength.WEAK, "the loss can be driven near zero"),
                    refutes(
                        "frozen_parameters",
                        Strength.WEAK,
                        "enough of the model trains to memorise a batch",
                    ),
                ),
            )
        effects, causes = [], []
        if not math.isfinite(m.final_loss):
            what = "the loss became NaN/Inf"
            causes = ["a learning rate far too high", "log(0) in a custom loss"]
            effects.append(supports("underfitting", Strength.STRONG, what + " on a single batch"))
        elif m.final_accuracy >= 1.0 and ratio > th.floor_fraction:
            what = (
                f"every item is classified right but the loss stays at {m.final_loss:.3g} "
                f"({ratio:.0%} of its start): the loss has a floor"
            )
            causes = [
                "a softmax/sigmoid before a loss that applies its own (double softmax)",
                "heavy label smoothing",
            ]
            effects.append(supports("wrong_loss", Strength.MODERATE, what))
        elif ratio > th.stuck_fraction:
            what = (
                f"the loss barely moves ({m.initial_loss:.3g} → {m.final_loss:.3g} in "
                f"{m.steps} steps, accuracy {m.final_accuracy:.0%})"
            )
            causes = [
                "a learning rate far too low (or far too high)",
                "frozen layers",
                "vanishing gradients or dead units",
                "a loss that does not fit the outputs",
            ]
            effects.append(
                supports(
                    "underfitting", Strength.STRONG, "the recipe cannot fit even one batch: " + what
                )
            )
        else:
            what = (
                f"the loss falls ({m.initial_loss:.3g} → {m.final_loss:.3g}) but the batch is "
                f"not memorised in {m.steps} steps (accuracy {m.final_accuracy:.0%})"
            )
            causes = [
                "a learning rate too low",
                "too little capacity left to train (frozen layers)",
                "identical images with different labels in the batch",
            ]
            effects.append(supports("underfitting", Strength.MODERATE, what))
            if m.final_accuracy >= 0.8 and ratio < 0.3:
                effects.append(
                    supports(
                        "label_misalignment",
                        Strength.WEAK,
                        "a few items resist memorisation while the rest fit",
                    )
                )
        return Finding(
            self.id,
            Verdict.FAIL,
            f"Cannot overfit one batch of {m.batch}: {what}. Likely causes: {'; '.join(causes)}.",
            metrics=metrics,
            artifacts=art,
            effects=tuple(effects),
            notes=notes,
            next_step="Run loss_fits_task, lr_range_test, gradient_flow and activations to find "
            "which one stops learning; a model that cannot memorise one batch cannot learn the "
            "dataset.",
        )
