"""Error budget: every eval error attributed to one category — label probably wrong, a failing
slice, a specific confusion, ambiguous (low margin) or unexplained — so the user sees what to fix
first. Reads the shared label-issue scores and slice statistics (the same evidence label_issues and
error_slices judge, whichever of them ran); `measure` keeps every error with its attributes and
`judge` attributes them, so re-judging with other thresholds re-attributes."""

from __future__ import annotations

from dataclasses import dataclass

from detective.analysis.erroranalysis import SliceStat
from detective.analysis.measures import LabelIssueScores, SliceStats
from detective.core.findings import Finding, Metric, Table, Verdict
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register


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
class ErrorRow:
    """One eval error with everything the attribution needs."""

    label: int
    pred: int
    margin: float  # top-1 minus top-2 probability
    noisy: bool  # label_issues judged the given label probably wrong
    slices: tuple[int, ...]  # positions in BudgetMeasurement.slices of the slices holding it


@dataclass(frozen=True)
class BudgetMeasurement:
    split: str
    n: int
    errors: int
    classes: tuple[str, ...]
    slices: tuple[SliceStat, ...]  # every candidate slice, unfiltered (as error_slices sees it)
    rows: tuple[ErrorRow, ...]


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
    uses = (LabelIssueScores, SliceStats)

    def measure(self, ctx, progress) -> BudgetMeasurement:
        import numpy as np

        from detective.analysis.erroranalysis import eval_collection

        progress.update(0.0)
        col = eval_collection(ctx, progress.span(0.0, 0.3))
        issues = ctx.shared(LabelIssueScores, progress.span(0.3, 0.9))
        slices = ctx.shared(SliceStats, progress.span(0.9, 1.0))
        mine = next((s for s in issues.splits if s.split == col.split), None)
        noisy = np.isin(col.index, np.asarray(mine.wrong_indices if mine else (), dtype=int))
        masks = [s.slice.mask(col) for s in slices.stats]
        probs = col.topk_probs
        margin = probs[:, 0] - (probs[:, 1] if probs.shape[1] > 1 else 0)
        rows = tuple(
            ErrorRow(
                int(col.label[r]),
                int(col.pred[r]),
                float(margin[r]),
                bool(noisy[r]),
                tuple(i for i, mask in enumerate(masks) if mask[r]),
            )
            for r in np.flatnonzero(~col.correct)
        )
        progress.update(1.0)
        return BudgetMeasurement(
            col.split, col.n, len(rows), tuple(col.classes), slices.stats, rows
        )

    def attribute(self, m: BudgetMeasurement) -> tuple[BudgetLine, ...]:
        """Each error to the first category that explains it, in order of precedence."""
        from detective.analysis.erroranalysis import significant
        from detective.checks.error_analysis.error_slices import SliceThresholds

        th = self.thresholds
        left = list(m.rows)
        lines: list[BudgetLine] = []

        def take(category: str, detail: str, hit: list[ErrorRow]) -> None:
            nonlocal left
            if hit:
                lines.append(BudgetLine(category, detail, len(hit)))
                chosen = {id(r) for r in hit}
                left = [r for r in left if id(r) not in chosen]

        take("label noise", "given label probably wrong", [r for r in left if r.noisy])
        st = SliceThresholds()  # the slices error_slices reports by default
        sig = significant(list(m.slices), st.alpha, st.min_size, st.min_errors, st.min_ratio)
        position = {id(s): i for i, s in enumerate(m.slices)}
        for s in sig[: th.max_slices]:
            take("slice", s.slice.label, [r for r in left if position[id(s)] in r.slices])
        pairs: dict[tuple[int, int], int] = {}
        for r in left:
            pairs[(r.label, r.pred)] = pairs.get((r.label, r.pred), 0) + 1
        for (t, p), count in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])):
            if count < th.min_confusion:
                break
            hit = [r for r in left if r.label == t and r.pred == p]
            take("confusion", f"{m.classes[t]} → {m.classes[p]}", hit)
        take(
            "ambiguous",
            f"top-2 margin < {th.ambiguous_margin}",
            [r for r in left if r.margin < th.ambiguous_margin],
        )
        take("unexplained", "none of the above", left)
        return tuple(lines)

    def judge(self, m: BudgetMeasurement) -> Finding:
        share = [(line, line.errors / m.errors if m.errors else 0.0) for line in self.attribute(m)]
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
