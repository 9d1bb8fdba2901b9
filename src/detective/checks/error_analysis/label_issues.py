"""Label errors vs hard examples: confident learning (cleanlab) on out-of-sample probabilities
of a cross-validated linear probe on the model's frozen penultimate features, on the eval split
and a bounded sample of train."""

from __future__ import annotations

from dataclasses import dataclass

from detective.analysis.measures import Candidate, LabelIssueScores, PairNoise, SplitIssues
from detective.core.findings import (
    Artifact,
    ArtifactKind,
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
    # Systematic annotator confusion, from cleanlab's joint: a share of one class labelled as one
    # other class, far more often than the reverse (a naturally hard pair confuses both ways).
    pair_rate: float = 0.15
    pair_count: int = 5
    pair_asymmetry: float = 3.0
    # Wrong labels are confident disagreements (the image plainly shows another class); a
    # weaker model's own errors are mostly unconfident ones. Below this share of the probe's
    # errors being "probably wrong", the flags are what a clean model of that accuracy produces
    # anyway (measured: 0.24-0.37 on clean and non-label bugs, 0.62-0.9 on planted label noise),
    # so the evidence is weak at most.
    confident_share: float = 0.5
    # A systematic pair confines the noise to one pair of classes, so it is a smaller share of
    # all the errors; a weak model's lopsided confusion has almost none (0.02 measured).
    pair_confident_share: float = 0.25


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
        pairs=noise_pairs(found.confident_joint, found.joint),
    )


def noise_pairs(confident_joint, joint, top: int = 5) -> tuple[PairNoise, ...]:  # noqa: ANN001
    """The class pairs where cleanlab's joint puts the most label noise (rows given, columns
    true), as P(given | true), with the reverse direction beside each."""
    import numpy as np

    if joint is None or confident_joint is None:
        return ()
    per_true = joint.sum(0)
    rate = np.divide(joint, per_true[None, :], out=np.zeros_like(joint), where=per_true > 0)
    off = joint.copy()
    np.fill_diagonal(off, 0.0)
    total = float(off.sum())
    cells = [(g, t) for g in range(len(joint)) for t in range(len(joint)) if g != t and off[g, t]]
    cells.sort(key=lambda gt: -rate[gt])
    return tuple(
        PairNoise(
            true=int(t),
            given=int(g),
            count=int(confident_joint[g, t]),
            rate=float(rate[g, t]),
            reverse_rate=float(rate[t, g]),
            share_of_noise=float(off[g, t] / total) if total else 0.0,
        )
        for g, t in cells[:top]
    )


def confident_share(s: SplitIssues) -> float:
    """The share of the probe's errors on this split that are "label probably wrong" (both the
    probe and the model confidently name another class); 0 when the probe makes no error."""
    errors = (1.0 - s.probe_accuracy) * s.examined if s.examined else 0.0
    return min(1.0, s.probably_wrong / errors) if errors >= 1 else 0.0


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

    def _systematic_pair(self, m: LabelIssuesMeasurement) -> tuple[str, PairNoise] | None:
        th = self.thresholds
        found = [
            (s.split, p)
            for s in m.splits
            for p in s.pairs
            if confident_share(s) >= th.pair_confident_share
            and p.rate >= th.pair_rate
            and p.count >= th.pair_count
            and p.rate >= th.pair_asymmetry * p.reverse_rate
        ]
        return max(found, key=lambda sp: sp[1].rate, default=None)

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
        share = confident_share(s)
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
        effects: tuple[Effect, ...]
        metrics.append(Metric(f"{s.split}: probably wrong / probe errors", share, "fraction",
                              key=f"confident_share.{s.split}"))
        if rate >= th.moderate_rate and share < th.confident_share:
            summary += (
                f"; but only {share:.0%} of the probe's {1 - s.probe_accuracy:.1%} errors are "
                "confident, what a clean model of that accuracy produces anyway"
            )
            verdict, effects = Verdict.PASS, (supports("label_noise", Strength.WEAK, summary),)
        elif rate >= th.strong_rate and s.probably_wrong >= th.strong_count:
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
        pair = self._systematic_pair(m)
        if pair is not None:
            split, p = pair
            what = (
                f"{split}: about {p.rate:.0%} of the {names[p.true]} items are labelled "
                f"{names[p.given]} ({p.count} confidently), against {p.reverse_rate:.0%} the "
                f"other way: a systematic {names[p.true]}→{names[p.given]} labelling confusion"
            )
            summary = f"{what}. {summary}"
            verdict = Verdict.FAIL
            effects = (supports("label_noise", Strength.STRONG, what),)
        tables.append(
            Table(
                "label noise by class pair (cleanlab's confident joint)",
                ("split", "true", "labelled", "share of true", "reverse", "confident count"),
                tuple(
                    (
                        s.split,
                        names[p.true],
                        names[p.given],
                        round(p.rate, 3),
                        round(p.reverse_rate, 3),
                        p.count,
                    )
                    for s in m.splits
                    for p in s.pairs
                ),
            )
        )
        return Finding(
            self.id,
            verdict,
            summary + ".",
            metrics=tuple(metrics),
            tables=tuple(tables),
            artifacts=artifacts,
            effects=effects,
            notes=notes,
            next_step=(
                "Review the 'label probably wrong' candidates (given vs suggested label) "
                "and relabel; leave hard examples, or collect more like them."
                + (
                    " Re-brief the annotators on the confused pair and relabel that class."
                    if pair
                    else ""
                )
            )
            if verdict is not Verdict.PASS
            else "",
        )
