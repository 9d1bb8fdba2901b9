"""The verifier: every claim in a summary that the measurements can check, checked.

Claims come from the structured fields (property + direction, true → predicted pairs) and from
the free text (title, cause, fix): words like "dark", "blurry", "low contrast", phrases like
"confuses 3 with 8" or "40% of errors". A claim the numbers contradict is marked UNSUPPORTED and
the report shows it as such; a claim nothing measured can decide is UNCHECKED.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from detective.llm.summary import ClusterSummary, Direction

if TYPE_CHECKING:
    from detective.analysis.clusters import ClusterFacts


class ClaimStatus(StrEnum):
    SUPPORTED = "supported"
    UNSUPPORTED = "unsupported"  # the measurements contradict it
    UNCHECKED = "unchecked"  # nothing measured decides it


@dataclass(frozen=True)
class CheckedClaim:
    claim: str  # e.g. "brightness lower than successes", "3 → 8", "40% of errors"
    origin: str  # "field" (structured) or "text"
    status: ClaimStatus
    evidence: str  # the measurement it was checked against


MIN_EFFECT = 0.5  # |Cohen's d| a property claim needs (a "medium" effect)
MIN_PAIR_SHARE = 0.10  # a confusion claim needs this share of the cluster
SHARE_TOLERANCE = 0.10  # absolute tolerance on "N% of errors"

# Words in free text that assert a property difference, and which one.
_PROPERTY_WORDS: tuple[tuple[str, Direction, str], ...] = (
    ("brightness", Direction.LOWER, r"dark|darker|dim|dimmer|under-?exposed|low[- ]light|night"),
    ("brightness", Direction.HIGHER, r"bright|brighter|over-?exposed|washed[- ]out"),
    ("contrast", Direction.LOWER, r"low[- ]contrast|faded|flat"),
    ("contrast", Direction.HIGHER, r"high[- ]contrast"),
    ("sharpness", Direction.LOWER, r"blurry|blurred|blur|out[- ]of[- ]focus|unsharp|smeared"),
    ("sharpness", Direction.HIGHER, r"noisy|grainy|over-?sharpened"),
    ("saturation", Direction.LOWER, r"gr[ae]yscale|desaturated|black[- ]and[- ]white|colou?rless"),
    ("saturation", Direction.HIGHER, r"over-?saturated|vivid"),
    ("width", Direction.LOWER, r"low[- ]resolution|low[- ]res|tiny images"),
)
_SHARE = re.compile(
    r"(\d{1,3}(?:\.\d+)?)\s*%\s*of\s+(?:all\s+|the\s+)?(?:errors|failures|mistakes|misclassifications)",
    re.IGNORECASE,
)
_LINK = (
    r"s?\s+(?:(?:is|are|gets?|being|often|mostly)\s+)*"
    r"(?:(?:predicted|classified|mistaken|misread|misclassified|confused|labell?ed|read)\s+)?"
    r"(?:as|for|with|into)\s+(?:an?\s+|the\s+)?"
)


def _property_check(
    name: str, direction: Direction, facts: ClusterFacts
) -> tuple[ClaimStatus, str]:
    eff = facts.effect(name)
    if eff is None or not (math.isfinite(eff.effect_size) or math.isinf(eff.effect_size)):
        return ClaimStatus.UNCHECKED, f"{name} was not measured"
    d = eff.effect_size
    evidence = f"measured {name}: Cohen's d = {d:+.2f} vs {eff.reference}"
    wanted = -1 if direction is Direction.LOWER else 1
    if d * wanted >= MIN_EFFECT:
        return ClaimStatus.SUPPORTED, evidence
    if d * wanted <= -MIN_EFFECT:
        return ClaimStatus.UNSUPPORTED, evidence + " (the opposite direction)"
    return ClaimStatus.UNSUPPORTED, evidence + f" (|d| < {MIN_EFFECT}: no real difference)"


def _pair_check(true: str, pred: str, facts: ClusterFacts) -> tuple[ClaimStatus, str]:
    measured = ", ".join(f"{p.true}→{p.pred} {p.share:.0%}" for p in facts.pairs) or "none"
    for p in facts.pairs:
        if p.true == true and p.pred == pred:
            if p.share >= MIN_PAIR_SHARE:
                return ClaimStatus.SUPPORTED, f"measured pairs: {measured}"
            break
    return ClaimStatus.UNSUPPORTED, f"measured pairs: {measured}"


def _class_pattern(classes: tuple[str, ...]) -> re.Pattern[str] | None:
    names = sorted({c for c in classes if c}, key=len, reverse=True)
    if not names:
        return None
    alt = "|".join(re.escape(n) for n in names)
    return re.compile(
        rf"(?<![\w])(?P<a>{alt}){_LINK}(?P<b>{alt})s?(?![\w])"
        rf"|(?<![\w])(?P<c>{alt})\s*(?:→|->)\s*(?P<d>{alt})(?![\w])",
        re.IGNORECASE,
    )


def verify(
    summary: ClusterSummary, facts: ClusterFacts, classes: tuple[str, ...] = ()
) -> tuple[CheckedClaim, ...]:
    """Every checkable claim of `summary`, checked against `facts`."""
    out: dict[tuple[str, ...], CheckedClaim] = {}

    def add(
        claim: str, origin: str, result: tuple[ClaimStatus, str], meaning: tuple[str, ...]
    ) -> None:
        if meaning not in out:  # one entry per meaning: structured fields first, then text
            out[meaning] = CheckedClaim(claim, origin, result[0], result[1])

    for p in summary.properties:
        add(
            f"{p.property} {p.direction.value} than successes",
            "field",
            _property_check(p.property, p.direction, facts),
            ("property", p.property, p.direction.value),
        )
    for c in summary.confusions:
        add(
            f"{c.true} → {c.pred}",
            "field",
            _pair_check(c.true, c.pred, facts),
            ("pair", c.true, c.pred),
        )

    text = " ".join((summary.title, summary.cause, summary.fix))
    for name, direction, words in _PROPERTY_WORDS:
        match = re.search(rf"\b(?:{words})\b", text, re.IGNORECASE)
        if match:
            add(
                f'"{match.group(0)}": {name} {direction.value} than successes',
                "text",
                _property_check(name, direction, facts),
                ("property", name, direction.value),
            )
    names = classes or tuple({p.true for p in facts.pairs} | {p.pred for p in facts.pairs})
    pattern = _class_pattern(tuple(names))
    if pattern is not None:
        lookup = {n.lower(): n for n in names}
        for m in pattern.finditer(text):
            a, b = (m.group("a"), m.group("b")) if m.group("a") else (m.group("c"), m.group("d"))
            true, pred = lookup[a.lower()], lookup[b.lower()]
            if true != pred:
                add(
                    f'"{m.group(0)}": {true} → {pred}',
                    "text",
                    _pair_check(true, pred, facts),
                    ("pair", true, pred),
                )
    for m in _SHARE.finditer(text):
        claimed = float(m.group(1)) / 100
        ok = abs(claimed - facts.share_of_errors) <= SHARE_TOLERANCE
        add(
            f'"{m.group(0)}"',
            "text",
            (
                ClaimStatus.SUPPORTED if ok else ClaimStatus.UNSUPPORTED,
                f"measured share of errors: {facts.share_of_errors:.0%}",
            ),
            ("share", f"{claimed:.3f}"),
        )
    return tuple(out.values())


def contradicted(checks: tuple[CheckedClaim, ...]) -> tuple[CheckedClaim, ...]:
    return tuple(c for c in checks if c.status is ClaimStatus.UNSUPPORTED)
