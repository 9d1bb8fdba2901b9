"""A cluster summary as a typed value: its JSON schema (what the model must fill) and parser.

Claims are structured where they can be (property + direction, true → predicted pair) so the
verifier checks them against the measurements without guessing at prose; the free-text fields
are scanned for claims too (see `verify`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from detective.llm.backend import LlmOutputError

PROPERTY_NAMES = ("brightness", "contrast", "sharpness", "saturation", "width", "height", "aspect")


class FixKind(StrEnum):
    AUGMENTATION = "augmentation"
    DATA_COLLECTION = "data_collection"
    RELABELLING = "relabelling"
    PREPROCESSING = "preprocessing"
    OTHER = "other"


class Direction(StrEnum):
    LOWER = "lower"
    HIGHER = "higher"


class SummarySource(StrEnum):
    NUMBERS = "numbers"  # the deterministic summary built from the measurements
    LLM = "llm"


@dataclass(frozen=True)
class PropertyClaim:
    property: str
    direction: Direction  # than the successes


@dataclass(frozen=True)
class ConfusionClaim:
    true: str
    pred: str


@dataclass(frozen=True)
class ClusterSummary:
    title: str
    cause: str  # a hypothesis for the cause
    fix_kind: FixKind
    fix: str
    properties: tuple[PropertyClaim, ...] = ()
    confusions: tuple[ConfusionClaim, ...] = ()


@dataclass(frozen=True)
class SummaryLimits:
    """Bounds on what the model may write; they bound generation time too."""

    title_chars: int = 60
    text_chars: int = 240
    max_claims: int = 3

    @property
    def max_tokens(self) -> int:
        # Worst case one token per character, plus the JSON scaffolding and enum values.
        return self.title_chars + 2 * self.text_chars + 40 * self.max_claims + 80


def schema(classes: tuple[str, ...], limits: SummaryLimits) -> dict[str, Any]:
    """The JSON schema the model's output is constrained to."""
    names = [str(c) for c in classes] or ["?"]
    text = {"type": "string", "minLength": 1, "maxLength": limits.text_chars}
    return {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": limits.title_chars},
            "cause": text,
            "fix_kind": {"enum": [k.value for k in FixKind]},
            "fix": text,
            "properties": {
                "type": "array",
                "maxItems": limits.max_claims,
                "items": {
                    "type": "object",
                    "properties": {
                        "property": {"enum": list(PROPERTY_NAMES)},
                        "direction": {"enum": [d.value for d in Direction]},
                    },
                    "required": ["property", "direction"],
                    "additionalProperties": False,
                },
            },
            "confusions": {
                "type": "array",
                "maxItems": limits.max_claims,
                "items": {
                    "type": "object",
                    "properties": {"true": {"enum": names}, "pred": {"enum": names}},
                    "required": ["true", "pred"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["title", "cause", "fix_kind", "fix", "properties", "confusions"],
        "additionalProperties": False,
    }


def parse(text: str) -> ClusterSummary:
    """The model's JSON as a ClusterSummary; LlmOutputError when it does not fit."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise LlmOutputError(f"the model's output is not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise LlmOutputError("the model's output is not a JSON object")
    try:
        props = tuple(
            PropertyClaim(str(p["property"]), Direction(p["direction"]))
            for p in data.get("properties", ())
            if str(p["property"]) in PROPERTY_NAMES
        )
        confusions = tuple(
            ConfusionClaim(str(c["true"]), str(c["pred"])) for c in data.get("confusions", ())
        )
        kind = data.get("fix_kind", "other")
        return ClusterSummary(
            title=_clean(data["title"]),
            cause=_clean(data["cause"]),
            fix_kind=FixKind(kind) if kind in FixKind._value2member_map_ else FixKind.OTHER,
            fix=_clean(data["fix"]),
            properties=props,
            confusions=confusions,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise LlmOutputError(f"the model's JSON lacks or mistypes a field ({e})") from e


def _clean(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return " ".join(value.split())
