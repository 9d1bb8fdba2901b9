"""Calibration: ECE with equal-mass bins, a reliability diagram, over/under-confidence, and
temperature scaling fitted on one half of the eval split, ECE measured on the other half.

Calibration is reported on its own: a miscalibrated model is not one of the hypotheses for low
accuracy, so this check moves none.
"""

from __future__ import annotations

from dataclasses import dataclass

from detective.core.findings import Artifact, Finding, Metric, Table, Verdict
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register


@dataclass(frozen=True)
class CalibrationThresholds:
    max_ece: float = 0.05  # above this (on the held-out half) calibration is worth fixing
    min_examples: int = 40


@dataclass(frozen=True)
class CalibrationSettings:
    """How much errors_calibration measures (read by measure only)."""

    bins: int = 15


@dataclass(frozen=True)
class ReliabilityBin:
    confidence: float
    accuracy: float
    count: int


@dataclass(frozen=True)
class CalibrationMeasurement:
    split: str
    n: int
    accuracy: float
    mean_confidence: float
    ece: float  # all examples
    bins: tuple[ReliabilityBin, ...]
    fit_n: int
    heldout_n: int
    temperature: float
    heldout_ece_before: float
    heldout_ece_after: float
    heldout_nll_before: float
    heldout_nll_after: float
    diagram: str


@register
class Calibration(Check[CalibrationMeasurement]):
    id = "calibration"
    title = "Calibration"
    stage = Stage.ERROR_ANALYSIS
    description = (
        "Expected calibration error (equal-mass bins) and a reliability diagram on the eval "
        "split; temperature scaling fitted on a held-out half, with the ECE before and after."
    )
    measurement_type = CalibrationMeasurement
    thresholds_type = CalibrationThresholds
    settings_type = CalibrationSettings

    def measure(self, ctx, progress) -> CalibrationMeasurement:
        import numpy as np

        from detective.analysis.erroranalysis import (
            ece,
            equal_mass_bins,
            eval_collection,
            fit_temperature,
            scaled_log_probs,
            temperature_nll,
        )

        st = self.settings
        from detective.analysis.pngplots import reliability_png

        progress.update(0.0)
        col = eval_collection(ctx, progress)
        conf, correct = col.confidence.astype(float), col.correct.astype(float)
        bins = equal_mass_bins(conf, correct, st.bins)
        rng = np.random.default_rng(ctx.options.seed)
        perm = rng.permutation(col.n)
        fit, held = perm[: col.n // 2], perm[col.n // 2 :]
        t = fit_temperature(col.log_probs[fit], col.label[fit]) if len(fit) >= 10 else 1.0
        lp_after = scaled_log_probs(col.log_probs[held], t)
        conf_after = np.exp(lp_after.max(1))
        correct_held = correct[held]
        path, rel = ctx.artifact(self.id, "reliability.png")
        reliability_png(
            bins, path, f"{col.split}: ECE {ece(conf, correct, st.bins):.3f} (equal-mass bins)"
        )
        progress.update(1.0)
        return CalibrationMeasurement(
            split=col.split,
            n=col.n,
            accuracy=float(correct.mean()) if col.n else 0.0,
            mean_confidence=float(conf.mean()) if col.n else 0.0,
            ece=ece(conf, correct, st.bins),
            bins=tuple(ReliabilityBin(c, a, n) for c, a, n in bins),
            fit_n=int(len(fit)),
            heldout_n=int(len(held)),
            temperature=t,
            heldout_ece_before=ece(conf[held], correct_held, st.bins),
            heldout_ece_after=ece(conf_after, correct_held, st.bins),
            heldout_nll_before=temperature_nll(col.log_probs[held], col.label[held], 1.0),
            heldout_nll_after=temperature_nll(col.log_probs[held], col.label[held], t),
            diagram=rel,
        )

    def judge(self, m: CalibrationMeasurement) -> Finding:
        th = self.thresholds
        gap = m.mean_confidence - m.accuracy
        direction = "overconfident" if gap > 0 else "underconfident"
        metrics = (
            Metric("ECE (equal-mass)", m.ece, key="ece"),
            Metric("mean confidence", m.mean_confidence, key="mean_confidence"),
            Metric("accuracy", m.accuracy),
            Metric("confidence - accuracy", gap),
            Metric("fitted temperature", m.temperature, key="temperature"),
            Metric("held-out ECE before", m.heldout_ece_before),
            Metric(
                "held-out ECE after temperature scaling",
                m.heldout_ece_after,
                key="heldout_ece_after_ts",
            ),
            Metric("held-out NLL before", m.heldout_nll_before),
            Metric("held-out NLL after", m.heldout_nll_after),
        )
        table = Table(
            "reliability (equal-mass bins)",
            ("mean confidence", "accuracy", "count"),
            tuple((round(b.confidence, 3), round(b.accuracy, 3), b.count) for b in m.bins),
        )
        artifacts = (Artifact("reliability diagram", m.diagram, m.split),) if m.diagram else ()
        scaled = (
            f"temperature scaling (T={m.temperature:.2f}, fitted on {m.fit_n}) moves the held-out "
            f"ECE {m.heldout_ece_before:.3f} → {m.heldout_ece_after:.3f}"
        )
        if m.n < th.min_examples:
            return Finding(
                self.id,
                Verdict.PASS,
                f"Only {m.n} examples: too few to judge calibration (ECE {m.ece:.3f}).",
                metrics=metrics,
                tables=(table,),
                artifacts=artifacts,
            )
        if m.heldout_ece_before > th.max_ece:
            return Finding(
                self.id,
                Verdict.WARN,
                f"The model is {direction}: mean confidence {m.mean_confidence:.1%} vs accuracy "
                f"{m.accuracy:.1%}, ECE {m.ece:.3f}; {scaled}.",
                metrics=metrics,
                tables=(table,),
                artifacts=artifacts,
                next_step=f"If probabilities are used downstream, divide the logits by "
                f"T={m.temperature:.2f} (fit T on a held-out set, not on test).",
            )
        return Finding(
            self.id,
            Verdict.PASS,
            f"Calibrated well enough: ECE {m.ece:.3f} (mean confidence {m.mean_confidence:.1%}, "
            f"accuracy {m.accuracy:.1%}); {scaled}.",
            metrics=metrics,
            tables=(table,),
            artifacts=artifacts,
        )
