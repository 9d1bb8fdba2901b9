"""Activations: dead ReLU units, saturated sigmoid/tanh, collapsing variance (every activation
call, functional or module)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from detective.core.budget import CaseSize, Cost, Knob
from detective.core.findings import (
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
class ActivationThresholds:
    dead_strong: float = 0.5  # share of a ReLU layer's units that never fire
    dead_moderate: float = 0.25
    # Dead units matter when the live ones keep less than this share of the dimensions the
    # layer's pre-activation carries (at most classes − 1: what a K-class head can use).
    rank_kept: float = 0.5
    saturated: float = 0.5  # share of sigmoid/tanh outputs within 1 % of their bounds
    collapse: float = 1e-3  # a layer's output std below this share of the first layer's


@dataclass(frozen=True)
class ActivationSettings:
    """How much learning_activations measures (read by measure only)."""

    items: int = 512


@dataclass(frozen=True)
class LayerActivations:
    layer: str
    kind: str  # relu, sigmoid, tanh, other
    units: int
    dead_fraction: float  # units never > 0 on any item/position (ReLU family)
    zero_fraction: float  # outputs exactly 0 (ReLU family)
    saturated_fraction: float  # outputs near the bounds (sigmoid/tanh)
    std: float
    rank: float = math.nan  # directions holding 99 % of the output variance (ReLU family)
    input_rank: float = math.nan  # the same for the pre-activation the layer was given


@dataclass(frozen=True)
class ActivationMeasurement:
    items: int
    layers: tuple[LayerActivations, ...]
    classes: int = 0  # 0 in sessions stored before ranks were measured


@register
class Activations(Check[ActivationMeasurement]):
    id = "activations"
    title = "Activations: dead and saturated units"
    stage = Stage.LEARNING
    description = (
        "Records every activation call (nn modules and F.relu / torch.relu alike) of a copy of "
        "your trained model over a sample: ReLU units that never fire and how much of the "
        "layer's signal they remove, sigmoid/tanh outputs stuck at their bounds, layers whose "
        "output variance collapses."
    )
    hypotheses = ("dead_units",)
    measurement_type = ActivationMeasurement
    thresholds_type = ActivationThresholds
    settings_type = ActivationSettings

    shrinkable = (Knob("items", 128),)

    def cost(self, size: CaseSize) -> Cost:
        from detective.core import budget

        return Cost(
            forward_items=min(self.settings.items, size.train_n),
            shared=(budget.learning_sample(size),),
        )

    def measure(self, ctx, progress) -> ActivationMeasurement:
        import torch

        from detective.analysis.learning import recipe
        from detective.analysis.learning.hooks import ActivationStats

        data = recipe.learning_data(ctx)
        x = data.x_fit[: self.settings.items]
        model = ctx.model_copy().eval()
        bs = ctx.case.eval_settings.batch_size
        with ActivationStats(model) as stats, torch.no_grad():
            for start in range(0, len(x), bs):
                progress.update(start, len(x))
                model(x[start : start + bs])
        progress.update(1.0)
        return ActivationMeasurement(
            len(x),
            tuple(
                LayerActivations(
                    s.name,
                    s.kind,
                    s.units,
                    s.dead_fraction,
                    s.zero_fraction,
                    s.saturated_fraction,
                    s.std,
                    s.rank,
                    s.input_rank,
                )
                for s in stats.summary()
            ),
            ctx.case.num_classes,
        )

    def judge(self, m: ActivationMeasurement) -> Finding:
        th = self.thresholds
        if not m.layers:
            return Finding(
                self.id,
                Verdict.NOT_APPLICABLE,
                "The forward pass calls no activation function (ReLU, sigmoid, tanh, GELU…), "
                "as a module or functionally: nothing to measure.",
            )
        relu = [la for la in m.layers if la.kind == "relu"]
        squash = [la for la in m.layers if la.kind in ("sigmoid", "tanh")]
        units = sum(la.units for la in relu)
        dead_total = sum(la.dead_fraction * la.units for la in relu) / units if units else 0.0
        dead = [la for la in relu if la.dead_fraction >= th.dead_moderate]
        # Units that never fire cost nothing when the live ones still carry the layer's signal
        # (a wide head whose spare units died): judged by what they remove, not by count.
        harmless = [la for la in dead if _impaired(la, m.classes, th.rank_kept) is False]
        worst = max(
            (la for la in relu if la not in harmless), key=lambda la: la.dead_fraction, default=None
        )
        worst_sat = max(squash, key=lambda la: la.saturated_fraction, default=None)
        ref_std = next((la.std for la in m.layers if la.std > 0), math.nan)
        collapsed = [
            la for la in m.layers[1:] if math.isfinite(ref_std) and la.std < th.collapse * ref_std
        ]
        table = Table(
            "activation layers (trained model copy)",
            (
                "layer",
                "kind",
                "units",
                "dead units",
                "zero outputs",
                "saturated",
                "output std",
                "dims kept (in → out)",
            ),
            tuple(
                (
                    la.layer,
                    la.kind,
                    la.units,
                    round(la.dead_fraction, 3),
                    round(la.zero_fraction, 3),
                    round(la.saturated_fraction, 3),
                    float(f"{la.std:.3g}"),
                    _dims(la),
                )
                for la in m.layers
            ),
        )
        metrics = (
            Metric("items", m.items),
            Metric("dead ReLU units, overall", dead_total, "fraction"),
            Metric(
                "dead ReLU units, worst layer",
                worst.dead_fraction if worst else 0.0,
                "fraction",
                worst.layer if worst else "",
            ),
            Metric(
                "saturated outputs, worst sigmoid/tanh",
                worst_sat.saturated_fraction if worst_sat else 0.0,
                "fraction",
                worst_sat.layer if worst_sat else "",
            ),
            Metric("layers with collapsed variance", len(collapsed)),
        )
        effects, problems = [], []
        if worst and worst.dead_fraction >= th.dead_moderate:
            strong = worst.dead_fraction >= th.dead_strong
            why = (
                f"{worst.dead_fraction:.0%} of the {worst.units} units of {worst.layer} never "
                f"fire on {m.items} images ({dead_total:.0%} of all ReLU units)"
                + (
                    f"; its output keeps {worst.rank:.0f} of the {worst.input_rank:.0f} "
                    "dimensions its input carries"
                    if math.isfinite(worst.rank) and math.isfinite(worst.input_rank)
                    else ""
                )
            )
            problems.append(why)
            effects.append(
                supports("dead_units", Strength.STRONG if strong else Strength.MODERATE, why)
            )
        if worst_sat and worst_sat.saturated_fraction >= th.saturated:
            why = (
                f"{worst_sat.saturated_fraction:.0%} of {worst_sat.layer}'s outputs sit at "
                f"the {worst_sat.kind}'s bounds (no gradient there)"
            )
            problems.append(why)
            effects.append(supports("dead_units", Strength.MODERATE, why))
        if collapsed:
            why = (
                f"output variance collapses in {', '.join(la.layer for la in collapsed[:4])} "
                f"(std < {th.collapse:g}× the first activation layer's)"
            )
            problems.append(why)
            effects.append(supports("dead_units", Strength.MODERATE, why))
        notes: tuple[str, ...] = (
            "Every activation call is recorded (nn modules and F.relu / torch.relu alike) on a "
            "copy of your trained model; inputs are train images as the model saw them in "
            "training.",
        )
        notes += tuple(
            f"{la.dead_fraction:.0%} of the {la.units} units of {la.layer} never fire, but the "
            f"live ones keep {la.rank:.0f} of the {la.input_rank:.0f} dimensions its input "
            "carries: no measured impact."
            for la in harmless
        )
        if not problems:
            return Finding(
                self.id,
                Verdict.PASS,
                (
                    f"Activations are alive: {dead_total:.0%} of ReLU units never fire "
                    f"(worst layer {worst.dead_fraction:.0%})"
                    if worst
                    else f"Activations are alive: {len(m.layers)} non-ReLU activation layers"
                )
                + "".join(
                    f"; {la.dead_fraction:.0%} of {la.layer}'s units never fire, with no measured "
                    f"impact (its output keeps {la.rank:.0f} dimensions)"
                    for la in harmless[:2]
                )
                + "; no saturation or collapsed variance.",
                metrics=metrics,
                tables=(table,),
                notes=notes,
                effects=(
                    refutes(
                        "dead_units",
                        Strength.MODERATE,
                        f"{dead_total:.0%} dead ReLU units, no saturated layer",
                    ),
                ),
            )
        return self.finding(
            "Dead or saturated units: " + "; ".join(problems) + ".",
            metrics=metrics,
            tables=(table,),
            effects=tuple(effects),
            notes=notes,
            next_step="Look for large negative biases or a too-high LR that killed the units; use "
            "He init, BatchNorm before the ReLU, or LeakyReLU/GELU; keep sigmoid/tanh inputs "
            "normalised.",
            concern=True,
        )


def _impaired(la: LayerActivations, classes: int, kept: float) -> bool | None:
    """Whether the dead units remove the layer's signal: its output keeps fewer than `kept` of
    the dimensions its pre-activation carries (capped at classes − 1). None: not measured."""
    if not (math.isfinite(la.rank) and math.isfinite(la.input_rank)):
        return None
    needed = min(la.input_rank, classes - 1) if classes > 1 else la.input_rank
    return la.rank < kept * needed


def _dims(la: LayerActivations) -> str:
    if not (math.isfinite(la.rank) and math.isfinite(la.input_rank)):
        return ""
    return f"{la.input_rank:.0f} → {la.rank:.0f}"
