"""Gradient flow: per-layer gradient norms over a short run of the user's recipe, fresh model."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from detective.core.budget import CaseSize, Cost, Knob
from detective.core.findings import (
    Artifact,
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
class GradFlowThresholds:
    vanishing_strong: float = 1e-3  # first/last layer gradient-norm ratio
    vanishing_moderate: float = 1e-2
    exploding_ratio: float = 1e3  # first/last ratio above this: early layers get huge gradients
    growth_strong: float = 1e3  # total gradient norm, last steps / first steps
    frozen_strong: float = 0.5  # share of parameters that can never train
    frozen_moderate: float = 0.1


@dataclass(frozen=True)
class GradFlowSettings:
    """How much learning_gradients measures (read by measure only)."""

    steps: int = 80


@dataclass(frozen=True)
class LayerGrad:
    layer: str
    params: int
    trainable: bool
    in_optimizer: bool
    norm_layer: bool
    mean_norm: float  # mean over steps (finite values)
    first_norm: float  # mean over the first steps
    last_norm: float  # mean over the last steps
    zero_steps: int  # steps where the layer received no (or an all-zero) gradient
    nonfinite_steps: int


@dataclass(frozen=True)
class GradFlowMeasurement:
    steps: int
    recipe: str
    lr: float
    layers: tuple[LayerGrad, ...]
    total_first: float
    total_last: float
    artifact: str = ""


@dataclass(frozen=True)
class GradFlowAssessment:
    ratio: float  # first / last layer mean gradient norm
    growth: float  # total gradient norm, last steps / first steps
    frozen_share: float
    frozen: tuple[LayerGrad, ...]
    no_grad: tuple[LayerGrad, ...]
    nonfinite: tuple[LayerGrad, ...]
    exploding: bool
    effects: tuple[Effect, ...]
    problems: tuple[str, ...]


@register
class GradientFlow(Check[GradFlowMeasurement]):
    id = "gradient_flow"
    title = "Gradient flow"
    stage = Stage.LEARNING
    description = (
        "Trains a fresh copy of the model for a few dozen steps with your recipe and records "
        "every layer's gradient norm: vanishing (first layers ≪ last), exploding or NaN "
        "gradients, and parameters that are frozen or never receive a gradient."
    )
    hypotheses = ("vanishing_gradients", "exploding_gradients", "frozen_parameters")
    needs_trained_model = False  # a fresh model and the recipe
    measurement_type = GradFlowMeasurement
    thresholds_type = GradFlowThresholds
    settings_type = GradFlowSettings

    shrinkable = (Knob("steps", 20, group="short_run"),)

    def cost(self, size: CaseSize) -> Cost:
        from detective.core import budget

        steps = self.settings.steps
        return Cost(shared=(budget.learning_sample(size), budget.short_run(size, steps)))

    def measure(self, ctx, progress) -> GradFlowMeasurement:
        from detective.analysis.learning import plots, recipe

        trace = recipe.short_run(ctx, progress, self.settings.steps)
        frozen = recipe.short_run_frozen(ctx)
        model = ctx.fresh_model()
        sizes = {name: sum(p.numel() for _, p in ps) for name, ps in recipe.layer_params(model)}
        trainable = {
            name: any(p.requires_grad for _, p in ps) for name, ps in recipe.layer_params(model)
        }
        steps = len(trace.grad_norms)
        w = max(1, steps // 10)
        layers = []
        for i, name in enumerate(trace.layers):
            col = [row[i] for row in trace.grad_norms]
            finite = [v for v in col if math.isfinite(v)]
            layers.append(
                LayerGrad(
                    layer=name,
                    params=sizes.get(name, 0),
                    trainable=trainable.get(name, True),
                    in_optimizer=name not in frozen.not_in_optimizer,
                    norm_layer=recipe.is_norm_layer(model, name),
                    mean_norm=statistics.fmean(finite) if finite else math.nan,
                    first_norm=_mean(col[:w]),
                    last_norm=_mean(col[-w:]),
                    zero_steps=sum(1 for v in col if v == 0.0),
                    nonfinite_steps=sum(1 for v in col if not math.isfinite(v)),
                )
            )
        totals = [math.sqrt(sum(v * v for v in row)) for row in trace.grad_norms]
        path, rel = ctx.artifact(self.id, "grad_norms.png")
        plots.bar_plot(
            path,
            [lg.layer for lg in layers],
            [lg.mean_norm for lg in layers],
            title=f"Mean gradient norm per layer ({steps} steps, fresh model)",
            ylabel="‖grad‖ (log)",
            highlight=[not lg.trainable or lg.zero_steps == steps for lg in layers],
        )
        return GradFlowMeasurement(
            steps=steps,
            recipe=trace.recipe,
            lr=trace.lr,
            layers=tuple(layers),
            total_first=_mean(totals[:w]),
            total_last=_mean(totals[-w:]),
            artifact=rel,
        )

    def judge(self, m: GradFlowMeasurement) -> Finding:
        if not m.steps:
            return Finding(self.id, Verdict.ERROR, "The short run made no step.", error="no steps")
        return self.present(m, self.assess(m))

    def assess(self, m: GradFlowMeasurement) -> GradFlowAssessment:
        """The judgement: which hypotheses the gradients move, and why (thresholds only here)."""
        th = self.thresholds
        total = sum(lg.params for lg in m.layers) or 1
        frozen = [lg for lg in m.layers if not lg.trainable or not lg.in_optimizer]
        frozen_share = sum(lg.params for lg in frozen) / total
        no_grad = [
            lg for lg in m.layers if lg.trainable and lg.in_optimizer and lg.zero_steps == m.steps
        ]
        nonfinite = [lg for lg in m.layers if lg.nonfinite_steps]
        flowing = [
            lg
            for lg in m.layers
            if lg.trainable
            and not lg.norm_layer
            and lg.zero_steps < m.steps
            and math.isfinite(lg.mean_norm)
            and lg.mean_norm > 0
        ]
        ratio = flowing[0].mean_norm / flowing[-1].mean_norm if len(flowing) >= 2 else math.nan
        growth = m.total_last / m.total_first if m.total_first > 0 else math.nan

        effects, problems = [], []
        if nonfinite:
            names = ", ".join(lg.layer for lg in nonfinite[:5])
            problems.append(f"NaN/Inf gradients in {names}")
            effects.append(
                supports("exploding_gradients", Strength.STRONG, f"non-finite gradients in {names}")
            )
        elif growth > th.growth_strong:
            problems.append(f"the total gradient norm grew {growth:.0f}× during the run")
            effects.append(
                supports(
                    "exploding_gradients",
                    Strength.STRONG,
                    f"total gradient norm grew {growth:.0f}× in {m.steps} steps",
                )
            )
        elif ratio > th.exploding_ratio:
            problems.append(f"the first layer's gradients are {ratio:.0f}× the last layer's")
            effects.append(
                supports(
                    "exploding_gradients",
                    Strength.MODERATE,
                    f"first/last gradient-norm ratio {ratio:.3g}",
                )
            )
        else:
            effects.append(
                refutes(
                    "exploding_gradients",
                    Strength.MODERATE,
                    f"gradients stay finite; total norm changes {growth:.2g}×",
                )
            )

        if math.isfinite(ratio) and ratio < th.vanishing_moderate:
            strong = ratio < th.vanishing_strong
            problems.append(
                f"the first layer ({flowing[0].layer}) gets {ratio:.1e} of the gradient norm "
                f"of the last ({flowing[-1].layer})"
            )
            effects.append(
                supports(
                    "vanishing_gradients",
                    Strength.STRONG if strong else Strength.MODERATE,
                    f"first/last layer gradient-norm ratio {ratio:.1e}",
                )
            )
        elif math.isfinite(ratio):
            effects.append(
                refutes(
                    "vanishing_gradients",
                    Strength.MODERATE,
                    f"first/last layer gradient-norm ratio {ratio:.2g}",
                )
            )

        if frozen:
            names = ", ".join(lg.layer for lg in frozen[:6]) + ("…" if len(frozen) > 6 else "")
            why = (
                f"{frozen_share:.0%} of the parameters can never train (requires_grad=False "
                f"or left out of the optimizer): {names}"
            )
            problems.append(why)
            # requires_grad=False can be a deliberate freeze; a parameter that gets a gradient
            # the optimizer never applies is not: no recipe computes gradients to discard them.
            orphaned = sum(lg.params for lg in frozen if lg.trainable) / total
            strength = (
                Strength.STRONG
                if frozen_share >= th.frozen_strong or orphaned >= th.frozen_moderate
                else Strength.MODERATE
                if frozen_share >= th.frozen_moderate
                else Strength.WEAK
            )
            if orphaned >= th.frozen_moderate:
                why += (
                    f" ({orphaned:.0%} have requires_grad=True but are in no optimizer group: "
                    "their gradients are computed and discarded)"
                )
            effects.append(supports("frozen_parameters", strength, why))
        if no_grad:
            names = ", ".join(lg.layer for lg in no_grad[:6])
            why = (
                f"trainable layers that never received a gradient: {names} (unused in "
                "forward, detached, or behind dead activations)"
            )
            problems.append(why)
            effects.append(supports("frozen_parameters", Strength.MODERATE, why))
        if not frozen and not no_grad:
            effects.append(
                refutes(
                    "frozen_parameters",
                    Strength.MODERATE,
                    "every parameter is trainable and receives a gradient",
                )
            )
        return GradFlowAssessment(
            ratio=ratio,
            growth=growth,
            frozen_share=frozen_share,
            frozen=tuple(frozen),
            no_grad=tuple(no_grad),
            nonfinite=tuple(nonfinite),
            exploding=bool(nonfinite) or growth > th.growth_strong,
            effects=tuple(effects),
            problems=tuple(problems),
        )

    def present(self, m: GradFlowMeasurement, a: GradFlowAssessment) -> Finding:
        """Prose, tables and the verdict rule around an assessment (no thresholds here)."""
        ratio, growth, effects, problems = a.ratio, a.growth, a.effects, a.problems
        rows = tuple(
            (
                lg.layer,
                lg.params,
                lg.trainable and lg.in_optimizer,
                _r(lg.first_norm),
                _r(lg.last_norm),
                _r(lg.mean_norm),
                lg.zero_steps,
                lg.nonfinite_steps,
            )
            for lg in m.layers
        )
        table = Table(
            "gradient norm per layer (fresh model, your recipe)",
            (
                "layer",
                "params",
                "trains",
                "first steps",
                "last steps",
                "mean",
                "zero-grad steps",
                "NaN/Inf steps",
            ),
            rows,
        )
        metrics = (
            Metric("steps", m.steps),
            Metric("first/last layer gradient ratio", ratio),
            Metric("total gradient norm growth", growth, "×"),
            Metric("frozen parameter share", a.frozen_share, "fraction"),
            Metric("layers without gradient", len(a.no_grad)),
            Metric("layers with NaN/Inf gradients", len(a.nonfinite)),
        )
        summary = (
            "Gradient flow problems: " + "; ".join(problems) + "."
            if problems
            else f"Gradients flow to every layer (first/last ratio {ratio:.2g}, no NaN/Inf, "
            "nothing frozen)."
        )
        next_step = ""
        if any(
            e.hypothesis == "vanishing_gradients" and e.direction.value == "supports"
            for e in effects
        ):
            next_step = (
                "Use ReLU-family activations with He init, add normalisation layers or "
                "residual connections, or shorten the stack."
            )
        elif a.frozen:
            next_step = (
                "If these layers should learn, set requires_grad=True and pass them to "
                "the optimizer; if the freeze is deliberate (a pretrained backbone), mark "
                "the hypothesis refuted."
            )
        elif a.exploding:
            next_step = "Lower the LR, clip gradients (clip_grad_norm_), check the loss for log(0)."
        return self.finding(
            summary,
            metrics=metrics,
            tables=(table,),
            artifacts=(
                Artifact(
                    "grad_norms",
                    m.artifact,
                    "mean gradient norm per layer; red: frozen or never receives a gradient",
                ),
            )
            if m.artifact
            else (),
            effects=effects,
            next_step=next_step,
            notes=(
                f"Measured on a fresh, untrained copy of the model ({m.recipe}, LR {m.lr:g}); "
                "your model and files are untouched.",
            ),
            concern=bool(problems),
        )


def _mean(values) -> float:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < len(values):
        return math.nan if not finite else math.inf
    return statistics.fmean(finite) if finite else math.nan


def _r(v: float) -> float:
    return float(f"{v:.3g}") if math.isfinite(v) else v
