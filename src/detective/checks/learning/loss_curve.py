"""Loss-curve diagnosis: the user's own logs (--logs, CSV or TensorBoard) or a short run."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from detective.analysis.learning.curves import CurveShape, curve_stats, val_rise
from detective.core.budget import CaseSize, Cost, Knob
from detective.core.findings import Artifact, Finding, Metric, Strength, Verdict, refutes, supports
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register


@dataclass(frozen=True)
class CurveThresholds:
    plateau_drop: float = 0.10  # the train loss fell less than this share: no progress
    healthy_drop: float = 0.5
    oscillation_noise: float = 0.05  # median |Δloss| / level in the second half
    divergence_rise: float = 1.5  # smoothed end / smoothed minimum
    val_rise: float = 0.10  # val loss above its minimum by this share, train still falling
    runaway_growth: float = 10.0  # weight-norm growth in the short run (LR too high)
    tiny_update: float = 1e-5  # typical ‖Δw‖/‖w‖ (LR too low)


@dataclass(frozen=True)
class CurveSettings:
    """How much learning_loss_curve measures (read by measure only)."""

    steps: int = 80


@dataclass(frozen=True)
class CurveMeasurement:
    source: str  # "short run", "csv" or "tensorboard"
    path: str
    train_name: str
    train_steps: tuple[int, ...]
    train: tuple[float, ...]
    val_name: str
    val_steps: tuple[int, ...]
    val: tuple[float, ...]
    lr: float  # NaN when read from logs
    max_weight_growth: float  # NaN when read from logs
    typical_update_ratio: float  # NaN when read from logs
    artifact: str = ""


@register
class LossCurve(Check[CurveMeasurement]):
    id = "loss_curve"
    title = "Loss curve diagnosis"
    stage = Stage.LEARNING
    description = (
        "Classifies the train/val loss curves (from --logs, a CSV or TensorBoard folder, or else "
        "a short run of your recipe): healthy, plateau from the start, divergence/NaN, "
        "oscillation, or val rising while train falls."
    )
    hypotheses = ("lr_too_high", "lr_too_low", "overfitting", "underfitting")
    needs_trained_model = False  # a fresh model and the recipe
    measurement_type = CurveMeasurement
    thresholds_type = CurveThresholds
    settings_type = CurveSettings

    shrinkable = (Knob("steps", 20, group="short_run"),)

    def cost(self, size: CaseSize) -> Cost:
        from detective.core import budget

        steps = self.settings.steps
        return Cost(shared=(budget.learning_sample(size), budget.short_run(size, steps)))

    def measure(self, ctx, progress) -> CurveMeasurement:
        import statistics

        from detective.analysis.learning import plots, recipe
        from detective.analysis.learning.logs import LogError, read_logs
        from detective.core.case import CaseError

        if ctx.options.logs:
            try:
                log = read_logs(ctx.options.logs)
            except LogError as e:
                raise CaseError(f"cannot read --logs: {e}") from e
            m = CurveMeasurement(
                log.source,
                log.path,
                log.train.name,
                log.train.steps,
                log.train.values,
                log.val.name if log.val else "",
                log.val.steps if log.val else (),
                log.val.values if log.val else (),
                math.nan,
                math.nan,
                math.nan,
            )
        else:
            trace = recipe.short_run(ctx, progress, self.settings.steps)
            growth, ratios = [], []
            for i in range(len(trace.layers)):
                w0 = trace.initial_weight_norms[i]
                if w0 > 1e-8 and trace.weight_norms:
                    growth.append(trace.weight_norms[-1][i] / w0)
                r = [
                    u[i] / w[i]
                    for u, w in zip(trace.update_norms, trace.weight_norms, strict=True)
                    if w[i] > 0 and u[i] > 0
                ]
                if r:
                    ratios.append(statistics.median(r))
            m = CurveMeasurement(
                "short run",
                "",
                "train loss (batch)",
                tuple(range(1, len(trace.losses) + 1)),
                trace.losses,
                "held-out train items" if trace.heldout else "",
                tuple(s for s, _, _ in trace.heldout),
                tuple(v for _, v, _ in trace.heldout),
                trace.lr,
                max(growth, default=math.nan),
                statistics.median(ratios) if ratios else math.nan,
            )
        path, rel = ctx.artifact(self.id, "loss_curve.png")
        series = [(m.train_name, m.train_steps, m.train)]
        if m.val:
            series.append((m.val_name, m.val_steps, m.val))
        plots.line_plot(
            path,
            series,
            title=f"Loss curves ({m.source})",
            xlabel="step",
            ylabel="loss",
            logy=all(v > 0 for v in m.train if math.isfinite(v)),
        )
        return replace(m, artifact=rel)

    def judge(self, m: CurveMeasurement) -> Finding:
        th = self.thresholds
        st = curve_stats(m.train)
        vr = val_rise(m.train_steps, m.train, m.val_steps, m.val, th.val_rise)
        from_logs = m.source != "short run"
        metrics = [
            Metric("points", len(m.train)),
            Metric("train loss, start", st.start),
            Metric("train loss, end", st.end),
            Metric("relative fall", st.drop, "fraction"),
            Metric("step-to-step noise", st.noise, "fraction of level"),
        ]
        if m.val:
            metrics += [Metric("val loss, best", vr.best), Metric("val loss, end", vr.final)]
        if not from_logs:
            metrics += [
                Metric("LR", m.lr),
                Metric("max weight-norm growth", m.max_weight_growth, "×"),
                Metric("typical update/weight ratio", m.typical_update_ratio),
            ]
        effects, shape, why = [], CurveShape.HEALTHY, ""
        grew = m.max_weight_growth > th.runaway_growth
        tiny = m.typical_update_ratio < th.tiny_update
        if st.first_nonfinite >= 0 or (
            st.points >= 4 and st.rise_from_min > th.divergence_rise and st.end > st.start
        ):
            shape = CurveShape.DIVERGENCE
            why = (
                f"the loss became NaN/Inf at point {st.first_nonfinite}"
                if st.first_nonfinite >= 0
                else f"the loss climbed back to {st.end:.3g}, {st.rise_from_min:.1f}× its minimum"
            )
            effects.append(supports("lr_too_high", Strength.STRONG, why))
        elif st.points < 8:
            shape, why = CurveShape.TOO_SHORT, f"only {st.points} finite points"
        elif st.drop < th.plateau_drop:
            if st.noise >= th.oscillation_noise or grew:
                shape = CurveShape.OSCILLATION
                why = (
                    f"the loss does not fall ({st.start:.3g} → {st.end:.3g}) and jumps "
                    f"{st.noise:.0%} step to step"
                )
                if grew:
                    why += f" while weights grow {m.max_weight_growth:.0f}×"
                effects.append(
                    supports("lr_too_high", Strength.STRONG if grew else Strength.MODERATE, why)
                )
            else:
                shape = CurveShape.PLATEAU
                why = f"the loss stays flat from the start ({st.start:.3g} → {st.end:.3g})"
                if tiny:
                    why += f" and updates are tiny (‖Δw‖/‖w‖ ≈ {m.typical_update_ratio:.1e})"
                    effects.append(supports("lr_too_low", Strength.STRONG, why))
                else:
                    effects.append(supports("underfitting", Strength.MODERATE, why))
                    if not from_logs:
                        effects.append(
                            refutes("lr_too_low", Strength.WEAK, "weights do move at a normal rate")
                        )
        elif vr.rising and vr.train_drop_after_best > 0.05:
            shape = CurveShape.VAL_RISING
            why = (
                f"val loss rose from {vr.best:.3g} (step {vr.best_at}) to {vr.final:.3g} while "
                f"train loss kept falling ({vr.train_drop_after_best:.0%} lower)"
            )
            # A short run trains on a small sample: only the user's own logs are strong evidence.
            effects.append(
                supports("overfitting", Strength.STRONG if from_logs else Strength.WEAK, why)
            )
        elif st.drop < th.healthy_drop:
            shape = CurveShape.SLOW
            why = f"the loss falls only {st.drop:.0%} ({st.start:.3g} → {st.end:.3g})"
            if tiny:
                effects.append(
                    supports("lr_too_low", Strength.MODERATE, why + " with tiny updates")
                )
        else:
            why = f"the loss falls {st.drop:.0%} ({st.start:.3g} → {st.end:.3g}) without blow-ups"
            effects += [
                refutes("lr_too_high", Strength.MODERATE, why),
                refutes("lr_too_low", Strength.MODERATE, why),
            ]
            if m.val and not vr.rising:
                effects.append(
                    refutes(
                        "overfitting", Strength.WEAK, "val loss does not rise while train falls"
                    )
                )
        if from_logs and shape in (CurveShape.HEALTHY, CurveShape.SLOW) and st.points >= 20:
            tail = curve_stats(m.train[-max(10, st.points // 5) :])
            if tail.drop > 0.1:
                effects.append(
                    supports(
                        "underfitting",
                        Strength.MODERATE,
                        f"the train loss was still falling {tail.drop:.0%} over "
                        "the last fifth of the run: training stopped early",
                    )
                )
        verdict = (
            Verdict.FAIL
            if any(
                e.strength is Strength.STRONG and e.direction.value == "supports" for e in effects
            )
            else Verdict.PASS
            if shape is CurveShape.HEALTHY
            else Verdict.WARN
        )
        source = (
            (
                f"your logs ({m.source}: {m.path}, '{m.train_name}'"
                + (f", '{m.val_name}'" if m.val_name else "")
                + ")"
            )
            if from_logs
            else (
                f"a short run of your recipe on a fresh model ({len(m.train)} steps, LR {m.lr:g}; "
                "val = held-out train items)"
            )
        )
        next_steps = {
            CurveShape.DIVERGENCE: "Lower the LR (see the LR range test), add warm-up/clipping.",
            CurveShape.OSCILLATION: "Lower the LR (see the LR range test) or raise the batch size.",
            CurveShape.PLATEAU: "Run gradient_flow, activations and overfit_one_batch: something "
            "stops learning (LR, frozen layers, dead units, loss).",
            CurveShape.VAL_RISING: f"Stop earlier (best val at step {vr.best_at}), add "
            "augmentation or regularisation.",
        }
        return Finding(
            self.id,
            verdict,
            f"Loss curve: {shape.value} — {why}." if why else f"Loss curve: {shape.value}.",
            metrics=tuple(metrics),
            artifacts=(Artifact("loss_curve", m.artifact, "train/val loss"),) if m.artifact else (),
            effects=tuple(effects),
            next_step=next_steps.get(shape, ""),
            notes=(f"From {source}. Your model and files are untouched.",),
        )
