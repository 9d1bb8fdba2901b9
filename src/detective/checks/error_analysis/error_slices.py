"""Slices: error rate by true class and by bins of each image property, tested against the rest
of the eval split, ranked by the share of all errors the slice holds."""

from __future__ import annotations

from dataclasses import dataclass

from detective.analysis.erroranalysis import SliceStat
from detective.analysis.measures import SliceStats
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

SliceMeasurement = SliceStats  # every slice tested, unfiltered: judge applies the thresholds


@dataclass(frozen=True)
class SliceThresholds:
    alpha: float = 0.01  # Bonferroni-adjusted one-sided Fisher exact test
    min_size: int = 20
    min_errors: int = 5
    min_ratio: float = 1.5  # slice error rate / rest error rate to be reported at all
    strong_ratio: float = 2.5  # ... to be evidence an expert acts on
    strong_errors: int = 10
    strong_share: float = 0.25  # the slice holds at least this share of all errors
    strong_alpha: float = 1e-3


@register
class ErrorSlices(Check[SliceMeasurement]):
    id = "error_slices"
    title = "Failure slices"
    stage = Stage.ERROR_ANALYSIS
    description = (
        "Error rate by true class and by quantile bins of brightness, contrast, sharpness, "
        "saturation and raw size; slices significantly worse than the rest (Fisher exact test, "
        "Bonferroni, minimum size), ranked by the share of all errors they hold."
    )
    hypotheses = ("slice_failure",)
    measurement_type = SliceStats
    thresholds_type = SliceThresholds
    uses = (SliceStats,)

    def measure(self, ctx, progress) -> SliceStats:
        progress.update(0.0)
        m = ctx.shared(SliceStats, progress)
        progress.update(1.0)
        return m

    def significant(self, m: SliceStats) -> tuple[SliceStat, ...]:
        """The slices significantly worse than the rest under this check's thresholds."""
        from detective.analysis.erroranalysis import significant

        th = self.thresholds
        return tuple(significant(list(m.stats), th.alpha, th.min_size, th.min_errors, th.min_ratio))

    def judge(self, m: SliceStats) -> Finding:
        th = self.thresholds
        rate = m.errors / m.n if m.n else 0.0
        sig = self.significant(m)

        def rows(stats: tuple[SliceStat, ...]) -> tuple[tuple, ...]:
            return tuple(
                (
                    s.slice.label,
                    s.size,
                    s.errors,
                    round(s.error_rate, 3),
                    round(s.rest_rate, 3),
                    round(s.ratio, 2),
                    float(f"{s.p_value:.3g}"),
                    round(s.share_of_errors, 3),
                    round(s.excess_errors, 1),
                )
                for s in stats
            )

        columns = (
            "slice",
            "size",
            "errors",
            "error rate",
            "rest rate",
            "ratio",
            "p (adjusted)",
            "share of all errors",
            "excess errors",
        )
        tables = (
            Table(
                "significant slices, by share of errors", columns, rows(sig), "significant_slices"
            ),
            Table("largest slices by errors (for context)", columns, rows(m.stats[:5])),
        )
        metrics = (
            Metric("examples", m.n),
            Metric("error rate", rate),
            Metric("slices tested", m.tested),
            Metric("significant slices", len(sig)),
        )
        if not sig:
            return Finding(
                self.id,
                Verdict.PASS,
                f"No slice of {m.split} is significantly worse than the rest ({m.tested} slices "
                f"tested, {m.errors} errors in {m.n}).",
                metrics=metrics,
                tables=tables,
                effects=(
                    (
                        refutes(
                            "slice_failure",
                            Strength.MODERATE if m.errors >= 20 else Strength.WEAK,
                            f"no class or property bin of {m.tested} tested is significantly "
                            "worse than the rest",
                        ),
                    )
                    if m.n
                    else ()
                ),
            )
        top = sig[0]
        strong = [
            s
            for s in sig
            if s.ratio >= th.strong_ratio
            and s.errors >= th.strong_errors
            and s.share_of_errors >= th.strong_share
            and s.p_value < th.strong_alpha
            and not s.confused_with  # a confusable pair is reported, not called a failing slice
        ]
        lead = strong[0] if strong else top
        what = (
            f"{lead.slice.label}: {lead.error_rate:.1%} errors vs {lead.rest_rate:.1%} elsewhere "
            f"({lead.ratio:.1f}×, p={lead.p_value:.2g}), {lead.errors} of the {m.errors} errors "
            f"({lead.share_of_errors:.0%})"
        )
        pairs = [
            f"{s.slice.label} is mostly confused with class {s.confused_with} and back: a "
            "confusable pair (look at both classes' examples; often the task's own ceiling)"
            for s in sig
            if s.confused_with
        ]
        effects = (
            supports("slice_failure", Strength.STRONG if strong else Strength.MODERATE, what),
        )
        return self.finding(
            f"{len(sig)} slice(s) of {m.split} fail far more often than the rest; "
            f"worst by share of errors: {what}.",
            metrics=(
                *metrics,
                Metric("top slice error ratio", lead.ratio),
                Metric("top slice share of errors", lead.share_of_errors),
            ),
            tables=tables,
            effects=effects,
            next_step="Look at examples of the slice (cluster gallery), collect or augment data "
            "like it, and check whether train covers it (eval_representativeness).",
            notes=tuple(pairs),
        )
