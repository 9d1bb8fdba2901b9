"""Weights: per-layer weight norms and update-to-weight ratios over a short run of the recipe."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from detective.core.budget import CaseSize, Cost, Knob
from detective.core.findings import (
    Artifact,
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
class WeightThresholds:
    runaway_growth: float = 10.0  # a layer's weight norm multiplied by this in a short run
    huge_ratio: float = 0.1  # median ‖Δw‖/‖w‖ per step (≈1e-3 is the usual healthy value)
    tiny_ratio: float = 1e-5


@dataclass(frozen=True)
class WeightSettings:
    """How much learning_weights measures (read by measure only)."""

    steps: int = 80


@dataclass(frozen=True)
class LayerWeights:
    layer: str
    initial_norm: float
    final_norm: float
    median_ratio: float  # median over steps of ‖Δw‖/‖w‖
    max_ratio: float
    changed: bool


@dataclass(frozen=True)
class WeightMeasurement:
    steps: int
    recipe: str
    lr: float
    layers: tuple[LayerWeights, ...]
    nonfinite: bool
    artifact: str = ""


@register
class WeightUpdates(Check[WeightMeasurement]):
    id = "weight_updates"
    title = "Weight norms and update sizes"
    stage = Stage.LEARNING
    description = (
        "Per-layer weight norms and update-to-weight ratios ‖Δw‖/‖w‖ over a short run of your "
        "recipe on a fresh model (≈1e-3 per step is healthy): runaway growth or huge steps "
        "mean the LR is too high, tiny ones that it is too low."
    )
    hypotheses = ("lr_too_high", "lr_too_low")
    needs_trained_model = False  # a fresh model and the recipe
    measurement_type = WeightMeasurement
    thresholds_type = WeightThresholds
    settings_type = WeightSettings

    shrinkable = (Knob("steps", 20, group="short_run"),)

    def cost(self, size: CaseSize) -> Cost:
        from detective.core import budget

        steps = self.settings.steps
        return Cost(shared=(budget.learning_sample(size), budget.short_run(size, steps)))

    def measure(self, ctx, progress) -> WeightMeasurement:
        from detective.analysis.learning import plots, recipe

        trace = recipe.short_run(ctx, progress, self.settings.steps)
        layers, series = [], []
        nonfinite = False
        for i, name in enumerate(trace.layers):
            norms = [row[i] for row in trace.weight_norms]
            ups = [row[i] for row in trace.update_norms]
            ratios = [u / w for u, w in zip(ups, norms, strict=True) if w > 0]
            nonfinite |= not all(map(math.isfinite, norms))
            finite = [r for r in ratios if math.isfinite(r)]
            layers.append(
                LayerWeights(
                    layer=name,
                    initial_norm=trace.initial_weight_norms[i],
                    final_norm=norms[-1] if norms else math.nan,
                    median_ratio=statistics.median(finite) if finite else 0.0,
                    max_ratio=max(finite) if finite else 0.0,
                    changed=any(u > 0 for u in ups),
                )
            )
            series.append((name, list(range(1, len(ratios) + 1)), ratios))
        path, rel = ctx.artifact(self.id, "update_ratios.png")
        plots.line_plot(
            path,
            [s for s in series if any(v > 0 for v in s[2])][:12],
            title="Update-to-weight ratio per step (fresh model, your recipe)",
            xlabel="step",
            ylabel="‖Δw‖ / ‖w‖ (log)",
            logy=True,
        )
        return WeightMeasurement(
            len(trace.weight_norms),
            trace.recipe,
            trace.lr,
            tuple(layers),
            nonfinite or trace.diverged,
            rel,
        )

    def judge(self, m: WeightMeasurement) -> Finding:
        th = self.thresholds
        moving = [lw for lw in m.layers if lw.changed]
        growth = {
            lw.layer: lw.final_norm / lw.initial_norm
            for lw in m.layers
            if lw.initial_norm > 1e-8 and math.isfinite(lw.final_norm)
        }
        worst_layer = max(growth, key=growth.get) if growth else ""
        worst_growth = growth.get(worst_layer, math.nan)
        typical = statistics.median(lw.median_ratio for lw in moving) if moving else 0.0
        rows = tuple(
            (
                lw.layer,
                _r(lw.initial_norm),
                _r(lw.final_norm),
                _r(growth.get(lw.layer, math.nan)),
                _r(lw.median_ratio),
                _r(lw.max_ratio),
                lw.changed,
            )
            for lw in m.layers
        )
        table = Table(
            "weights per layer over the short run",
            (
                "layer",
                "initial ‖w‖",
                "final ‖w‖",
                "growth",
                "median ‖Δw‖/‖w‖",
                "max ‖Δw‖/‖w‖",
                "changes",
            ),
            rows,
        )
        metrics = (
            Metric("steps", m.steps),
            Metric("configured LR", m.lr),
            Metric("typical update/weight ratio", typical, "per step", "healthy ≈ 1e-3"),
            Metric("largest weight-norm growth", worst_growth, "×", worst_layer),
            Metric("layers that never change", len(m.layers) - len(moving)),
        )
        effects = []
        verdict, summary, next_step = Verdict.PASS, "", ""
        if m.nonfinite:
            verdict = Verdict.FAIL
            summary = f"Weights became NaN/Inf within {m.steps} steps at LR {m.lr:g}."
            effects.append(supports("lr_too_high", Strength.STRONG, "weights became NaN/Inf"))
        elif worst_growth > th.runaway_growth:
            verdict = Verdict.FAIL
            summary = (
                f"Runaway weights: {worst_layer}'s norm grew {worst_growth:.0f}× in "
                f"{m.steps} steps at LR {m.lr:g} (typical update/weight ratio {typical:.1e})."
            )
            effects.append(
                supports(
                    "lr_too_high",
                    Strength.STRONG,
                    f"{worst_layer} weight norm ×{worst_growth:.0f} in {m.steps} steps",
                )
            )
        elif typical > th.huge_ratio:
            verdict = Verdict.FAIL
            summary = (
                f"Each step changes the weights by {typical:.1%} of their norm (typical), "
                f"~{typical / 1e-3:.0f}× the healthy 1e-3."
            )
            effects.append(
                supports(
                    "lr_too_high",
                    Strength.STRONG,
                    f"typical update/weight ratio {typical:.2g} per step",
                )
            )
        elif moving and typical < th.tiny_ratio:
            verdict = Verdict.WARN
            summary = (
                f"Updates are tiny: ‖Δw‖/‖w‖ ≈ {typical:.1e} per step, ~{1e-3 / typical:.0f}× "
                "below the healthy 1e-3: the weights barely move."
            )
            effects.append(
                supports(
                    "lr_too_low",
                    Strength.MODERATE,
                    f"typical update/weight ratio {typical:.1e} per step",
                )
            )
            effects.append(refutes("lr_too_high", Strength.MODERATE, "updates are tiny"))
        else:
            summary = (
                f"Weight updates look healthy: typical ‖Δw‖/‖w‖ {typical:.1e} per step, "
                f"largest norm growth {worst_growth:.2g}× ({worst_layer})."
            )
            effects.append(
                refutes(
                    "lr_too_high",
                    Strength.MODERATE,
                    f"update/weight ratio {typical:.1e}, norms grow ≤ {worst_growth:.2g}×",
                )
            )
        if verdict is Verdict.FAIL:
            next_step = (
                "Lower the LR (the LR range test suggests a value), or add warm-up and "
                "gradient clipping."
            )
        elif effects and effects[0].hypothesis == "lr_too_low":
            next_step = "Raise the LR (see the LR range test's suggestion)."
        return Finding(
            self.id,
            verdict,
            summary,
            metrics=metrics,
            tables=(table,),
            artifacts=(Artifact("update_ratios", m.artifact, "‖Δw‖/‖w‖ per step for each layer"),)
            if m.artifact
            else (),
            effects=tuple(effects),
            next_step=next_step,
            notes=(
                f"Measured on a fresh copy of the model trained {m.steps} steps with your "
                f"recipe ({m.recipe}); your model is untouched. Layers that never change "
                "are covered by the gradient-flow check.",
            ),
        )


def _r(v: float) -> float:
    return float(f"{v:.3g}") if math.isfinite(v) else v
