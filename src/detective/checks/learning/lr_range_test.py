"""Learning-rate range test (Smith 2015): an exponential LR sweep on a fresh copy of the model."""

from __future__ import annotations

import math
from dataclasses import dataclass

from detective.analysis.learning.curves import centered_mean, ema
from detective.core.budget import CaseSize, Cost, Knob
from detective.core.findings import Artifact, Finding, Metric, Strength, Verdict, refutes, supports
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register


@dataclass(frozen=True)
class RangeThresholds:
    blowup: float = 4.0  # stop once the smoothed loss exceeds this multiple of its best
    too_low_factor: float = 100.0  # configured ≤ suggestion / this: far too low
    low_factor: float = 20.0
    min_fall: float = 0.05  # the smoothed loss must fall this share for the sweep to be usable


@dataclass(frozen=True)
class RangeSettings:
    """How much learning_lr_range measures (read by measure only)."""

    start_lr: float = 1e-6
    end_lr: float = 10.0
    steps: int = 80
    stop_blowup: float = 4.0  # stop the sweep once the smoothed loss exceeds this × its best


@dataclass(frozen=True)
class RangeMeasurement:
    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    configured_lr: float
    lr_source: str
    recipe: str
    artifact: str = ""


@dataclass(frozen=True)
class RangeResult:
    smoothed: tuple[float, ...]
    min_loss_lr: float
    steepest_lr: float
    suggested_lr: float  # min_loss_lr / 10, the usual pick
    blowup_lr: float  # NaN if the loss never blew up
    fall: float  # relative fall of the smoothed loss from start to its minimum


def analyse(m: RangeMeasurement, blowup: float) -> RangeResult:
    finite = [(lr, v) for lr, v in zip(m.lrs, m.losses, strict=False) if math.isfinite(v)]
    if len(finite) < 5:
        return RangeResult(
            (), math.nan, math.nan, math.nan, m.lrs[len(finite)] if m.lrs else math.nan, 0.0
        )
    lrs = [lr for lr, _ in finite]
    smooth = centered_mean([v for _, v in finite], 3)
    best = min(range(len(smooth)), key=smooth.__getitem__)
    # Steepest fall of the smoothed loss per decade of LR, before the minimum.
    grads = [
        (smooth[i + 1] - smooth[i]) / (math.log10(lrs[i + 1]) - math.log10(lrs[i]))
        for i in range(max(best, 1))
    ]
    steep = min(range(len(grads)), key=grads.__getitem__) if grads else 0
    blow = next(
        (lrs[i] for i in range(best, len(smooth)) if smooth[i] > blowup * smooth[best]), math.nan
    )
    if len(finite) < len(m.losses) and math.isnan(blow):
        blow = m.lrs[len(finite)]
    fall = (smooth[0] - smooth[best]) / smooth[0] if smooth[0] > 0 else 0.0
    return RangeResult(tuple(smooth), lrs[best], lrs[steep], lrs[best] / 10, blow, fall)


@register
class LrRangeTest(Check[RangeMeasurement]):
    id = "lr_range_test"
    title = "Learning-rate range test"
    stage = Stage.LEARNING
    description = (
        "Sweeps the learning rate exponentially from 1e-6 to 10 on a fresh copy of the model with "
        "your optimizer and loss, smooths the loss, suggests an LR and says how far the "
        "configured one is from it."
    )
    hypotheses = ("lr_too_high", "lr_too_low")
    needs_trained_model = False  # a fresh model and the recipe
    measurement_type = RangeMeasurement
    thresholds_type = RangeThresholds
    settings_type = RangeSettings

    shrinkable = (Knob("steps", 30),)

    def cost(self, size: CaseSize) -> Cost:
        from detective.core import budget

        fit = min(size.sample, size.train_n, 512)
        steps = self.settings.steps * min(1.0, fit / max(1, size.train_batch))
        return Cost(train_steps=steps, shared=(budget.learning_sample(size),))

    def measure(self, ctx, progress) -> RangeMeasurement:
        from detective.analysis.learning import plots, recipe
        from detective.analysis.training import configured_lr

        st = self.settings
        data = recipe.learning_data(ctx)
        model = ctx.fresh_model()
        lr, source = configured_lr(ctx, model)
        n = st.steps
        lrs = [st.start_lr * (st.end_lr / st.start_lr) ** (i / (n - 1)) for i in range(n)]
        seen: list[float] = []

        def stop(_step: int, loss: float) -> bool:
            seen.append(loss)
            if len(seen) < 10:
                return False
            smooth = ema(seen, 0.9)
            return smooth[-1] > st.stop_blowup * min(smooth)

        trace = recipe.run_recipe(
            ctx,
            model,
            data.x_fit,
            data.y_fit,
            steps=n,
            progress=progress,
            lr_schedule=lambda step: lrs[min(step, n - 1)],
            stop=stop,
        )
        m = RangeMeasurement(
            tuple(lrs[: len(trace.losses)]),
            trace.losses,
            lr,
            source,
            "built-in loop with your optimizer and loss"
            + (" (your train() hook cannot take an LR schedule)" if ctx.case.has("train") else ""),
        )
        r = analyse(m, st.stop_blowup)  # for the plot's marker; judge applies its threshold
        path, rel = ctx.artifact(self.id, "lr_range.png")
        plots.line_plot(
            path,
            [("loss", m.lrs, m.losses), ("smoothed", m.lrs[: len(r.smoothed)], r.smoothed)],
            title="LR range test (fresh model)",
            xlabel="learning rate (log)",
            ylabel="loss",
            logx=True,
            vlines=[("configured", lr), ("suggested", r.suggested_lr)],
        )
        return RangeMeasurement(m.lrs, m.losses, lr, source, m.recipe, rel)

    def judge(self, m: RangeMeasurement) -> Finding:
        th = self.thresholds
        r = analyse(m, th.blowup)
        lr = m.configured_lr
        factor = lr / r.suggested_lr if r.suggested_lr > 0 else math.nan
        metrics = (
            Metric("configured LR", lr, "", m.lr_source),
            Metric("suggested LR", r.suggested_lr, "", "LR at the loss minimum / 10"),
            Metric("LR at the loss minimum", r.min_loss_lr),
            Metric("LR of steepest fall", r.steepest_lr),
            Metric("LR where the loss blows up", r.blowup_lr),
            Metric("configured / suggested", factor, "×"),
            Metric("loss fall during the sweep", r.fall, "fraction"),
        )
        art = (Artifact("lr_range", m.artifact, "loss vs learning rate"),) if m.artifact else ()
        notes = (f"Swept on a fresh copy of the model ({m.recipe}); your model is untouched.",)
        if not r.smoothed or r.fall < th.min_fall:
            return Finding(
                self.id,
                Verdict.WARN,
                f"The range test is inconclusive: the smoothed loss fell only {r.fall:.0%} "
                "anywhere in the sweep, so no LR can be suggested (something other than the LR "
                "stops learning).",
                metrics=metrics,
                artifacts=art,
                notes=notes,
                next_step="Run gradient_flow, activations and overfit_one_batch.",
            )
        far = "higher" if factor > 1 else "lower"
        how_far = f"{max(factor, 1 / factor):.3g}× {far} than the suggested {r.suggested_lr:.2g}"
        if lr >= r.min_loss_lr or (math.isfinite(r.blowup_lr) and lr >= r.blowup_lr):
            where = (
                "the loss blows up"
                if math.isfinite(r.blowup_lr) and lr >= r.blowup_lr
                else "the sweep's loss was already past its minimum"
            )
            return Finding(
                self.id,
                Verdict.FAIL,
                f"The configured LR {lr:.2g} is too high: at that LR {where}; it is {how_far}.",
                metrics=metrics,
                artifacts=art,
                notes=notes,
                effects=(
                    supports(
                        "lr_too_high",
                        Strength.STRONG,
                        f"configured {lr:.2g} ≥ loss-minimum LR {r.min_loss_lr:.2g} ({how_far})",
                    ),
                ),
                next_step=f"Train at about {r.suggested_lr:.2g} (or use a schedule peaking there).",
            )
        if factor <= 1 / th.low_factor:
            strong = factor <= 1 / th.too_low_factor
            return Finding(
                self.id,
                Verdict.FAIL if strong else Verdict.WARN,
                f"The configured LR {lr:.2g} is {how_far}: training will crawl.",
                metrics=metrics,
                artifacts=art,
                notes=notes,
                effects=(
                    supports(
                        "lr_too_low",
                        Strength.STRONG if strong else Strength.MODERATE,
                        f"configured {lr:.2g} is {how_far}",
                    ),
                    refutes("lr_too_high", Strength.MODERATE, "the configured LR is low"),
                ),
                next_step=f"Train at about {r.suggested_lr:.2g}.",
            )
        return Finding(
            self.id,
            Verdict.PASS,
            f"The configured LR {lr:.2g} is within a sensible range (suggested "
            f"{r.suggested_lr:.2g}; the loss is lowest at {r.min_loss_lr:.2g}).",
            metrics=metrics,
            artifacts=art,
            notes=notes,
            effects=(
                refutes(
                    "lr_too_high",
                    Strength.MODERATE,
                    f"configured {lr:.2g} < loss-minimum LR {r.min_loss_lr:.2g}",
                ),
                refutes(
                    "lr_too_low",
                    Strength.MODERATE,
                    f"configured {lr:.2g} is within {th.low_factor:.0f}× of {r.suggested_lr:.2g}",
                ),
            ),
        )
