"""Label errors vs hard examples: confident learning (cleanlab) on out-of-sample probabilities
of a cross-validated linear probe on the model's frozen penultimate features, on the eval split
and a bounded sample of train."""

from __future__ import annotations

from dataclasses import dataclass

from detective.analysis.measures import Candidate, LabelIssueScores, SplitIssues
from detective.core.findings import (
    Artifact,
    ArtifactKind,
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

PROBABLY_WRONG = "label probably wrong"
HARD = "hard example"


@dataclass(frozen=True)
class LabelThresholds:
    # Curated datasets carry a few percent of wrong labels (ImageNet is estimated at ~5%) and a
    # linear probe errs with the model on hard inputs: below 5% an expert would not relabel.
    strong_rate: float = 0.05  # share of examined examples whose label is probably wrong
    strong_count: int = 10
    moderate_rate: float = 0.025
    moderate_count: int = 5
    clean_rate: float = 0.01


@dataclass(frozen=True)
class LabelSettings:
    shown: int = 24  # candidates in the gallery


LabelIssuesMeasurement = LabelIssueScores  # the shared scores (the error budget reads them too)


def analyse_split(col, folds: int, agree_prob: float) -> SplitIssues:
    """Issues among the collection's uniform-sample rows (every row for small splits)."""

    from detective.analysis.labelissues import find_issues

    rows, feats = col.sample_features()
    if feats.size == 0:
        return SplitIssues(col.split, 0, float("nan"), 0, 0, 0, (), (), ())
    labels = col.label[rows]
    found = find_issues(feats, labels, col.num_classes, folds)
    cands = []
    for r in found.issue_rows.tolist():
        row = int(rows[r])
        p = found.oos_probs[r]
        given = int(labels[r])
        masked = p.copy()
        masked[given] = -1
        suggested = int(masked.argmax())
        pred = int(col.pred[row])
        wrong = p[suggested] >= agree_prob and pred == suggested
        cands.append(
            Candidate(
                int(col.index[row]),
                given,
                suggested,
                float(p[given]),
                float(p[suggested]),
                pred,
                float(col.confidence[row]),
                PROBABLY_WRONG if wrong else HARD,
            )
        )
    wrong_idx = tuple(c.index for c in cands if c.kind == PROBABLY_WRONG)
    return SplitIssues(
        split=col.split,
        examined=int(len(rows)),
        probe_accuracy=found.probe_accuracy,
        issues=len(cands),
        probably_wrong=len(wrong_idx),
        hard=len(cands) - len(wrong_idx),
        flagged=tuple(c.index for c in cands),
        wrong_indices=wrong_idx,
        candidates=tuple(cands[:50]),
    )


@register
class LabelIssues(Check[LabelIssuesMeasurement]):
    id = "label_issues"
    title = "Label errors vs hard examples"
    stage = Stage.ERROR_ANALYSIS
    description = (
        "Confident learning (cleanlab find_label_issues) on out-of-sample probabilities from a "
        "cross-validated linear probe on the model's frozen penultimate features, on the eval "
        "split and a train sample; separates 'label probably wrong' from 'hard example'."
    )
    hypotheses = ("label_noise",)
    measurement_type = LabelIssuesMeasurement
    thresholds_type = LabelThresholds
    settings_type = LabelSettings
    uses = (LabelIssueScores,)

    def measure(self, ctx, progress) -> LabelIssuesMeasurement:
        from dataclasses import replace

        from detective.analysis.pngplots import image_grid
        from detective.analysis.rawimages import display_images

        progress.update(0.0)
        m = ctx.shared(LabelIssueScores, progress)
        first = m.splits[0]
        shown = first.candidates[: self.settings.shown]
        if not shown:
            return m
        path, rel = ctx.artifact(self.id, "candidates.png")
        images = display_images(ctx, first.split, [c.index for c in shown])
        names = ctx.case.classes
        captions = [
            f"#{c.index} given {names[c.given][:6]}\nsuggest {names[c.suggested][:6]}"
            f" {c.suggested_prob:.2f}\n{'WRONG?' if c.kind == PROBABLY_WRONG else 'hard'}"
            for c in shown
        ]
        image_grid(images, captions).save(path)
        progress.update(1.0)
        return replace(m, gallery=rel)

    def judge(self, m: LabelIssuesMeasurement) -> Finding:
        th = self.thresholds
        names = m.classes
        metrics = []
        tables = []
        best: tuple[float, SplitIssues] | None = None
        for s in m.splits:
            rate = s.probably_wrong / s.examined if s.examined else 0.0
            metrics += [
                Metric(f"{s.split}: examined", s.examined),
                Metric(f"{s.split}: probe accuracy (cross-validated)", s.probe_accuracy),
                Metric(f"{s.split}: label issues", s.issues),
                Metric(f"{s.split}: label probably wrong", s.probably_wrong),
                Metric(
                    f"{s.split}: probably-wrong rate",
                    rate,
                    "fraction",
                    key=f"probably_wrong_rate.{s.split}",
                ),
            ]
            tables.append(
                Table(
                    f"{s.split}: label issue candidates, most likely wrong first",
                    (
                        "index",
                        "given",
                        "suggested",
                        "p(given)",
                        "p(suggested)",
                        "model predicts",
                        "model confidence",
                        "verdict",
                    ),
                    tuple(
                        (
                            c.index,
                            names[c.given],
                            names[c.suggested],
                            round(c.given_prob, 3),
                            round(c.suggested_prob, 3),
                            names[c.model_pred],
                            round(c.model_confidence, 3),
                            c.kind,
                        )
                        for c in s.candidates[:30]
                    ),
                )
            )
            if s.examined and (best is None or rate > best[0]):
                best = (rate, s)
        artifacts = (
            (
                Artifact(
                    "label issue candidates",
                    m.gallery,
                    "given vs suggested label",
                    kind=ArtifactKind.GALLERY,
                ),
            )
            if m.gallery
            else ()
        )
        notes = (m.note,) if m.note else ()
        if best is None:
            return Finding(
                self.id,
                Verdict.PASS,
                "No example could be examined.",
                metrics=tuple(metrics),
                notes=notes,
            )
        rate, s = best
        summary = (
            f"{s.split}: {s.probably_wrong} of {s.examined} labels ({rate:.1%}) are probably "
            f"wrong (the out-of-sample probe and the model agree on another class), "
            f"{s.hard} more flagged examples look hard rather than mislabeled"
        )
        others = "; ".join(
            f"{o.split}: {o.probably_wrong}/{o.examined} probably wrong"
            for o in m.splits
            if o is not s
        )
        if others:
            summary += f" ({others})"
        if rate >= th.strong_rate and s.probably_wrong >= th.strong_count:
            verdict, effects = Verdict.FAIL, (supports("label_noise", Strength.STRONG, summary),)
        elif rate >= th.moderate_rate and s.probably_wrong >= th.moderate_count:
            verdict, effects = Verdict.WARN, (supports("label_noise", Strength.MODERATE, summary),)
        elif rate < th.clean_rate:
            verdict, effects = (
                Verdict.PASS,
                (
                    refutes(
                        "label_noise",
                        Strength.WEAK,
                        f"fewer than {th.clean_rate:.0%} of labels look wrong in every split",
                    ),
                ),
            )
        else:
            verdict, effects = Verdict.PASS, ()
        return Finding(
            self.id,
            verdict,
            summary + ".",
            metrics=tuple(metrics),
            tables=tuple(tables),
            artifacts=artifacts,
            effects=effects,
            notes=notes,
            next_step="Review the 'label probably wrong' candidates (given vs suggested label) "
            "and relabel; leave hard examples, or collect more like them."
            if verdict is not Verdict.PASS
            else "",
        )
