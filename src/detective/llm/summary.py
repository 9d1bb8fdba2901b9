"""A cluster summary: the typed value, its JSON schema (what the model must fill), the parser,
and the loop that gets one per cluster — from the model when one is configured and usable, else
from the numbers — cached in the session so a resumed or re-run session does not regenerate them.

Claims are structured where they can be (property + direction, true → predicted pair) so the
verifier checks them against the measurements without guessing at prose; the free-text fields
are scanned for claims too (see `verify`).

Progress: one span per cluster, advanced per streamed piece; cancelling (Progress' event: Ctrl-C,
the TUI's cancel key) raises `Cancelled` from inside the generation, which stops it at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from detective.core.progress import Cancelled
from detective.core.serde import from_jsonable, to_jsonable
from detective.llm.backend import Backend, LlmOutputError, LlmUnavailable
from detective.llm.prompts import PROMPT_VERSION, cluster_prompt

if TYPE_CHECKING:
    from detective.analysis.clusters import ClusterFacts
    from detective.core.progress import Progress

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


def _from_numbers(facts: ClusterFacts) -> ClusterSummary:
    from detective.llm.fallback import summary_from_facts  # it builds on the types above

    return summary_from_facts(facts)


class KeyValue(Protocol):
    """Where summaries are cached: `Session` satisfies it (kv_get / kv_set)."""

    def kv_get(self, key: str) -> str | None: ...

    def kv_set(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class SummaryRecord:
    cluster_id: str
    source: SummarySource
    model: str  # the backend's name; "" for the numbers
    summary: ClusterSummary
    cached: bool = False
    note: str = ""  # why the numbers were used for this cluster, when a model was configured


def cache_key(backend: Backend, prompt: str, schema_: dict[str, object]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([PROMPT_VERSION, backend.key, prompt, schema_], sort_keys=True).encode())
    return "llm:cluster-summary:" + h.hexdigest()[:32]


def summarize_cluster(
    facts: ClusterFacts,
    backend: Backend | None,
    classes: Sequence[str],
    *,
    cache: KeyValue | None = None,
    progress: Progress | None = None,
    limits: SummaryLimits | None = None,
) -> SummaryRecord:
    """One cluster's summary. Generation errors and unusable output fall back to the numbers
    (with the reason in `note`); `Cancelled` and `LlmUnavailable` (the model cannot load)
    propagate."""
    if backend is None:
        return SummaryRecord(facts.id, SummarySource.NUMBERS, "", _from_numbers(facts))
    limits = limits or SummaryLimits()
    prompt = cluster_prompt(facts)
    schema_ = schema(tuple(classes), limits)
    key = cache_key(backend, prompt, schema_)
    if cache is not None:
        stored = cache.kv_get(key)
        if stored is not None:
            try:
                summary = from_jsonable(ClusterSummary, json.loads(stored))
                return SummaryRecord(facts.id, SummarySource.LLM, backend.name, summary, True)
            except (TypeError, ValueError, KeyError):
                pass  # an unreadable cache entry is regenerated
    received = 0

    def on_text(piece: str) -> None:
        nonlocal received
        received += len(piece)
        if progress is not None:
            progress.update(min(0.99, received / limits.max_tokens), None, "generating summary")

    try:
        text = backend.complete_json(prompt, schema_, max_tokens=limits.max_tokens, on_text=on_text)
        summary = parse(text)
    except (Cancelled, LlmUnavailable):
        raise
    except Exception as e:  # llama.cpp errors (context overflow...) and unusable output alike
        if not isinstance(e, LlmOutputError):
            e = LlmOutputError(f"{type(e).__name__}: {e}")
        return SummaryRecord(
            facts.id,
            SummarySource.NUMBERS,
            "",
            _from_numbers(facts),
            note=f"{backend.name} gave no usable summary: {e}",
        )
    if cache is not None:
        cache.kv_set(key, json.dumps(to_jsonable(summary)))
    if progress is not None:
        progress.update(1.0)
    return SummaryRecord(facts.id, SummarySource.LLM, backend.name, summary)


def summarize_clusters(
    clusters: Sequence[ClusterFacts],
    backend: Backend | None,
    classes: Sequence[str],
    *,
    cache: KeyValue | None = None,
    progress: Progress | None = None,
    limits: SummaryLimits | None = None,
) -> tuple[SummaryRecord, ...]:
    """Every cluster's summary. A model that cannot load gives the numbers for all clusters,
    each with the reason."""
    out = []
    unavailable = ""
    for n, facts in enumerate(clusters):
        span = progress.span(n / len(clusters), (n + 1) / len(clusters)) if progress else None
        if not unavailable:
            try:
                out.append(
                    summarize_cluster(
                        facts, backend, classes, cache=cache, progress=span, limits=limits
                    )
                )
                continue
            except LlmUnavailable as e:
                unavailable = str(e)
        out.append(
            SummaryRecord(
                facts.id, SummarySource.NUMBERS, "", _from_numbers(facts), note=unavailable
            )
        )
    return tuple(out)
