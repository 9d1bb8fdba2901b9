"""Error budget: every eval error attributed to one category — label probably wrong, a failing
slice, a specific confusion, ambiguous (low margin) or unexplained — so the user sees what to fix
first. Reads what label_issues, error_slices and per_class_report found in this run (ctx.memo),
recomputing it from the collection when they did not run."""

from __future__ import annotations

from dataclasses import dataclass

from detective.findings import Finding, Metric, Table, Verdict
from detective.hypotheses import Stage
from detective.registry import Check, register


@dataclass(frozen=True)
class BudgetThresholds:
    min_confusion: int = 3  # a class pair needs this many errors to be its own line
    ambiguous_margin: float = 0.2  # top-1 minus top-2 probability below this = ambiguous
    max_slices: int = 3


@dataclass(frozen=True)
class BudgetLine:
    category: str  # "label noise" | "slice" | "confusion" | "ambiguous" | "unexplained"
    detail: str
    errors: int


@dataclass(frozen=True)
class BudgetMeasurement:
    split: str
    n: int
    errors: int
    lines: tuple[BudgetLine, ...]


@register
class ErrorBudget(Check[BudgetMeasurement]):
    id = "error_budget"
    title = "Error budget"
    stage = Stage.ERROR_ANALYSIS
    description = (
        "One table attributing each eval error to label noise, a failing slice, a specific "
        "confusion between two classes, ambiguity (low margin) or nothing known, with counts "
        "and shares, in that order of precedence."
    )
    measurement_type = BudgetMeasurement
    thresholds_type = BudgetThresholds

    def measure(self, ctx, progress) -> BudgetMeasurement:
        import numpy as np

        from detective.checks.errors_label_issues import label_issues
        from detective.checks.errors_slices import SliceThresholds
        from detective.erroranalysis import (
            candidate_slices,
            eval_collection,
            significant,
            slice_stats,
        )

        progress.update(0.0)
        th = self.thresholds
        col = eval_collection(ctx, progress.span(0.0, 0.3))
        wrong = ~col.correct
        left = wrong.copy()
        lines: list[BudgetLine] = []

        issues = label_issues(ctx, progress.span(0.3, 0.9))
        mine = next((s for s in issues.splits if s.split == col.split), None)
        if mine is not None and mine.wrong_indices:
            noisy = np.isin(col.index, np.asarray(mine.wrong_indices))
            hit = left & noisy
            if hit.any():
                lines.append(
                    BudgetLine("label noise", "given label probably wrong", int(hit.sum()))
                )
                left &= ~hit

        sig = ctx.memo.get("errors:slices")
        if sig is None:
            st = SliceThresholds()
            sig = significant(
                slice_stats(col, candidate_slices(col, st.bins)),
                st.alpha,
                st.min_size,
                st.min_errors,
                st.min_ratio,
            )
        for s in sig[: th.max_slices]:
            hit = left & s.slice.mask(col)
            if hit.any():
                lines.append(BudgetLine("slice", s.slice.label, int(hit.sum())))
                left &= ~hit

        names = col.classes
        pairs: dict[tuple[int, int], int] = {}
        for r in np.flatnonzero(left):
            key = (int(col.label[r]), int(col.pred[r]))
            pairs[key] = pairs.get(key, 0) + 1
        for (t, p), count in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])):
            if count < th.min_confusion:
                break
            hit = left & (col.label == t) & (col.pred == p)
            lines.append(BudgetLine("confusion", f"{names[t]} → {names[p]}", int(hit.sum())))
            left &= ~hit

        probs = col.topk_probs
        margin = probs[:, 0] - (probs[:, 1] if probs.shape[1] > 1 else 0)
        hit = left & (margin < th.ambiguous_margin)
        if hit.any():
            lines.append(
                BudgetLine("ambiguous", f"top-2 margin < {th.ambiguous_margin}", int(hit.sum()))
            )
            left &= ~hit
        if left.any():
            lines.append(BudgetLine("unexplained", "none of the above", int(left.sum())))
        progress.update(1.0)
        return BudgetMeasurement(col.split, col.n, int(wrong.sum()), tuple(lines))

    def judge(self, m: BudgetMeasurement) -> Finding:
        share = [(line, line.errors / m.errors if m.errors else 0.0) for line in m.lines]
        table = Table(
            f"error budget ({m.errors} errors in {m.n} {m.split} examples)",
            ("category", "detail", "errors", "% of errors", "% of examples"),
            tuple(
                (
                    line.category,
                    line.detail,
                    line.errors,
                    round(100 * s, 1),
                    round(100 * line.errors / m.n, 2) if m.n else 0.0,
                )
                for line, s in share
            ),
        )
        if not m.errors:
            return Finding(
                self.id, Verdict.PASS, f"No errors on {m.split} ({m.n} examples).", tables=(table,)
            )
        known = [(line, s) for line, s in share if line.category != "unexplained"]
        top = max(known, key=lambda t: t[0].errors, default=None)
        lead = (
            f"the largest attributable part is {top[0].category} ({top[0].detail}): "
            f"{top[0].errors} errors, {top[1]:.0%}"
            if top
            else "no error could be attributed to a known category"
        )
        return Finding(
            self.id,
            Verdict.PASS,
            f"{m.errors} errors on {m.split}; {lead}.",
            metrics=tuple(
                Metric(f"{line.category}: {line.detail}", s, "fraction of errors")
                for line, s in share
            ),
            tables=(table,),
            next_step="Fix the largest attributable category first; re-run to see the budget "
            "shrink.",
        )
