"""The deterministic summary: what the numbers alone say about a cluster. Used when no model is
configured, when it fails to load, or when its answer is unusable; always passes the verifier."""

from __future__ import annotations

from typing import TYPE_CHECKING

from detective.llm.summary import (
    ClusterSummary,
    ConfusionClaim,
    Direction,
    FixKind,
    PropertyClaim,
)
from detective.llm.verify import MIN_EFFECT, MIN_PAIR_SHARE

if TYPE_CHECKING:
    from detective.analysis.clusters import ClusterFacts

STRONG_EFFECT = 0.8  # |d| from which a property, not the classes, is named as the pattern
DOMINANT_PAIR = 0.5

_WORD = {
    ("brightness", Direction.LOWER): "darker",
    ("brightness", Direction.HIGHER): "brighter",
    ("contrast", Direction.LOWER): "lower-contrast",
    ("contrast", Direction.HIGHER): "higher-contrast",
    ("sharpness", Direction.LOWER): "blurrier",
    ("sharpness", Direction.HIGHER): "sharper or noisier",
    ("saturation", Direction.LOWER): "less saturated",
    ("saturation", Direction.HIGHER): "more saturated",
}
_AUGMENT = {
    "brightness": "brightness jitter (e.g. ColorJitter(brightness=0.4))",
    "contrast": "contrast jitter (e.g. ColorJitter(contrast=0.4))",
    "sharpness": "blur and noise augmentation (e.g. GaussianBlur)",
    "saturation": "saturation jitter or RandomGrayscale",
    "width": "RandomResizedCrop over a wider scale range",
    "height": "RandomResizedCrop over a wider scale range",
    "aspect": "RandomResizedCrop over a wider ratio range",
}


def _word(name: str, direction: Direction) -> str:
    return _WORD.get((name, direction), f"{direction.value} {name}")


def summary_from_facts(facts: ClusterFacts) -> ClusterSummary:
    props = tuple(
        PropertyClaim(e.name, Direction.LOWER if e.effect_size < 0 else Direction.HIGHER)
        for e in facts.properties
        if abs(e.effect_size) >= MIN_EFFECT
    )[:3]
    confusions = tuple(
        ConfusionClaim(p.true, p.pred) for p in facts.pairs if p.share >= MIN_PAIR_SHARE
    )[:3]
    top = facts.top_pair
    strong = [e for e in facts.properties if abs(e.effect_size) >= STRONG_EFFECT]
    parts = [f"{facts.size} failures ({facts.share_of_errors:.0%} of errors)"]
    if top is not None and top.share >= MIN_PAIR_SHARE:
        parts.append(f"{top.share:.0%} are true {top.true} predicted as {top.pred}")
    for e in facts.properties[:2]:
        if abs(e.effect_size) >= MIN_EFFECT:
            d = Direction.LOWER if e.effect_size < 0 else Direction.HIGHER
            parts.append(
                f"{e.name} {d.value} than {e.reference} (Cohen's d = {e.effect_size:+.2f})"
            )
    for s in facts.slices:
        parts.append(f"error rate on {s.description}: {s.error_rate:.0%} ({s.lift:.1f}× overall)")
    title_bits = []
    if top is not None and top.share >= DOMINANT_PAIR:
        title_bits.append(f"{top.true} → {top.pred}")
    if strong:
        e = strong[0]
        title_bits.append(
            _word(e.name, Direction.LOWER if e.effect_size < 0 else Direction.HIGHER) + " images"
        )
    title = ", ".join(title_bits) or f"mixed failures (cluster of {facts.size})"
    if strong:
        e = strong[0]
        d = Direction.LOWER if e.effect_size < 0 else Direction.HIGHER
        cause = (
            f"The model fails on {_word(e.name, d)} images than it handles well; "
            + "; ".join(parts)
            + "."
        )
        kind = FixKind.AUGMENTATION
        fix = (
            f"Train with {_AUGMENT.get(e.name, 'augmentation covering this range')} and collect "
            f"more {_word(e.name, d)} examples; re-measure this cluster."
        )
    elif top is not None and top.share >= DOMINANT_PAIR:
        cause = (
            f"The model confuses class {top.true} with {top.pred} on a coherent group of "
            "images; " + "; ".join(parts) + "."
        )
        kind = FixKind.DATA_COLLECTION
        fix = (
            f"Look at the thumbnails: if the labels are right, collect more class {top.true} "
            f"examples that resemble {top.pred}; if some are mislabelled, relabel them."
        )
    else:
        cause = "No single measured property or class pair explains it; " + "; ".join(parts) + "."
        kind = FixKind.OTHER
        fix = "Inspect the thumbnails for a shared trait the measured properties do not capture."
    return ClusterSummary(title, cause, kind, fix, props, confusions)
