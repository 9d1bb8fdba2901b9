"""Galleries of the highest-loss and the most confidently wrong eval examples."""

from __future__ import annotations

from dataclasses import dataclass

from detective.core.findings import (
    Artifact,
    ArtifactKind,
    FailureRef,
    Finding,
    Metric,
    Table,
    Verdict,
    image_ref,
)
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register


@dataclass(frozen=True)
class ExamplesThresholds:
    confident: float = 0.9  # a wrong prediction at or above this confidence is "confidently wrong"


@dataclass(frozen=True)
class ExamplesSettings:
    """How much errors_examples measures (read by measure only)."""

    count: int = 24  # examples per gallery


@dataclass(frozen=True)
class Example:
    index: int
    label: int
    pred: int
    confidence: float
    loss: float


@dataclass(frozen=True)
class ExamplesMeasurement:
    split: str
    n: int
    errors: int
    wrong_confidences: tuple[float, ...]  # the confidence of every error, highest first
    classes: tuple[str, ...]
    highest_loss: tuple[Example, ...]
    most_confident_wrong: tuple[Example, ...]
    loss_png: str
    wrong_png: str


@register
class WorstExamples(Check[ExamplesMeasurement]):
    id = "worst_examples"
    title = "Highest-loss and most confidently wrong examples"
    stage = Stage.ERROR_ANALYSIS
    description = (
        "Shows the eval examples with the highest loss and the wrong predictions made with the "
        "highest confidence, with true label, prediction and confidence, to look at by eye."
    )
    measurement_type = ExamplesMeasurement
    thresholds_type = ExamplesThresholds
    settings_type = ExamplesSettings

    def measure(self, ctx, progress) -> ExamplesMeasurement:
        import numpy as np

        from detective.analysis.erroranalysis import eval_collection
        from detective.analysis.pngplots import image_grid
        from detective.analysis.rawimages import display_images

        progress.update(0.0)
        col = eval_collection(ctx, progress)
        k = self.settings.count
        wrong = ~col.correct

        def pick(order: np.ndarray) -> tuple[Example, ...]:
            return tuple(
                Example(
                    int(col.index[r]),
                    int(col.label[r]),
                    int(col.pred[r]),
                    float(col.confidence[r]),
                    float(col.loss[r]),
                )
                for r in order[:k]
            )

        by_loss = pick(np.argsort(-col.loss, kind="stable"))
        wrong_rows = np.flatnonzero(wrong)
        by_conf = pick(wrong_rows[np.argsort(-col.confidence[wrong_rows], kind="stable")])
        paths = []
        for name, examples in (("highest_loss.png", by_loss), ("confidently_wrong.png", by_conf)):
            path, rel = ctx.artifact(self.id, name)
            if examples:
                images = display_images(ctx, col.split, [e.index for e in examples])
                captions = [
                    f"#{e.index}\ntrue {col.classes[e.label][:8]}\n"
                    f"pred {col.classes[e.pred][:8]} {e.confidence:.2f}"
                    for e in examples
                ]
                image_grid(images, captions).save(path)
                paths.append(rel)
            else:
                paths.append("")
            progress.update(len(paths) / 2)
        return ExamplesMeasurement(
            split=col.split,
            n=col.n,
            errors=int(wrong.sum()),
            wrong_confidences=tuple(
                sorted((float(c) for c in col.confidence[wrong]), reverse=True)
            ),
            classes=col.classes,
            highest_loss=by_loss,
            most_confident_wrong=by_conf,
            loss_png=paths[0],
            wrong_png=paths[1],
        )

    def judge(self, m: ExamplesMeasurement) -> Finding:
        th = self.thresholds
        names = m.classes

        def table(title: str, examples: tuple[Example, ...]) -> Table:
            return Table(
                title,
                ("index", "true", "predicted", "confidence", "loss"),
                tuple(
                    (
                        e.index,
                        names[e.label],
                        names[e.pred],
                        round(e.confidence, 3),
                        round(e.loss, 3),
                    )
                    for e in examples
                ),
            )

        artifacts = tuple(
            Artifact(name, path, caption, kind=ArtifactKind.GALLERY)
            for name, path, caption in (
                ("highest loss", m.loss_png, f"{m.split}: highest-loss examples"),
                ("confidently wrong", m.wrong_png, f"{m.split}: most confident wrong predictions"),
            )
            if path
        )
        confidently_wrong = sum(c >= th.confident for c in m.wrong_confidences)
        share = confidently_wrong / m.errors if m.errors else 0.0
        return Finding(
            self.id,
            Verdict.PASS,
            f"{m.errors} of {m.n} {m.split} examples are wrong; {confidently_wrong} of them "
            f"with confidence ≥ {th.confident:.0%}. The galleries show them for inspection.",
            metrics=(
                Metric("errors", m.errors),
                Metric("confidently wrong", confidently_wrong),
                Metric("confidently wrong share of errors", share),
            ),
            tables=(
                table("highest loss", m.highest_loss),
                table("most confidently wrong", m.most_confident_wrong),
            ),
            artifacts=artifacts,
            failures=refs(m),
            next_step="Look at the galleries: wrong labels, odd images and genuinely ambiguous "
            "cases need different fixes (see label_issues and error_budget)."
            if m.errors
            else "",
        )


def refs(m: ExamplesMeasurement) -> tuple[FailureRef, ...]:
    """The wrong examples of both galleries, each once, as reviewable items of the split."""
    seen: dict[int, FailureRef] = {}
    for examples, png in ((m.most_confident_wrong, m.wrong_png), (m.highest_loss, m.loss_png)):
        for e in examples:
            if e.label != e.pred and e.index not in seen:
                names = m.classes
                seen[e.index] = image_ref(
                    m.split, e.index, names[e.label], names[e.pred], e.confidence, png
                )
    return tuple(seen.values())
