"""Summaries for a clustering: from the model when one is configured and usable, else from the
numbers; cached in the session so a resumed or re-run session does not regenerate them.

Progress: one span per cluster, advanced per streamed piece; cancelling (Progress' event: Ctrl-C,
the TUI's cancel key) raises `Cancelled` from inside the generation, which stops it at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from detective.llm.backend import Backend, LlmOutputError, LlmUnavailable
from detective.llm.fallback import summary_from_facts
from detective.llm.prompts import PROMPT_VERSION, cluster_prompt
from detective.llm.summary import ClusterSummary, SummaryLimits, SummarySource, parse, schema
from detective.progress import Cancelled
from detective.serde import from_jsonable, to_jsonable

if TYPE_CHECKING:
    from detective.clusters import ClusterFacts
    from detective.progress import Progress


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
        return SummaryRecord(facts.id, SummarySource.NUMBERS, "", summary_from_facts(facts))
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
            summary_from_facts(facts),
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
                facts.id, SummarySource.NUMBERS, "", summary_from_facts(facts), note=unavailable
            )
        )
    return tuple(out)
