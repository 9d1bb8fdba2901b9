"""LLM summaries with a scripted backend: verification, fallback, caching, cancel, vision path."""

from __future__ import annotations

import threading

import pytest

from detective.analysis.clusters import ClusterFacts, PairCount, PropertyEffect
from detective.core.progress import Cancelled, Progress
from detective.llm.backend import LlmUnavailable
from detective.llm.fake import FakeBackend
from detective.llm.llamacpp import LlamaCppBackend
from detective.llm.summary import (
    SummaryLimits,
    SummarySource,
    parse,
    schema,
    summarize_cluster,
    summarize_clusters,
)
from detective.llm.verify import ClaimStatus, verify

CLASSES = tuple(str(d) for d in range(10))


def facts(**changes) -> ClusterFacts:
    base = dict(
        id="c-12345678",
        rank=1,
        size=40,
        share_of_errors=0.4,
        cohesion=0.35,
        pairs=(PairCount("3", "8", 30, 0.75), PairCount("5", "6", 6, 0.15)),
        properties=(
            PropertyEffect("sharpness", 0.3, 0.9, -1.6, "successes"),
            PropertyEffect("brightness", 0.41, 0.40, 0.1, "successes"),
        ),
        members=tuple(range(40)),
    )
    base.update(changes)
    return ClusterFacts(**base)


class DictStore:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def kv_get(self, key: str) -> str | None:
        return self.data.get(key)

    def kv_set(self, key: str, value: str) -> None:
        self.data[key] = value


ANSWER = {
    "title": "Dark images of 3 read as 8",
    "cause": "These are dark images; the model confuses 3 with 8 and 7 as 1; 40% of errors.",
    "fix_kind": "augmentation",
    "fix": "Add blur augmentation.",
    "properties": [
        {"property": "brightness", "direction": "lower"},
        {"property": "sharpness", "direction": "lower"},
    ],
    "confusions": [{"true": "3", "pred": "8"}, {"true": "2", "pred": "7"}],
}


def status_of(checks, needle: str) -> ClaimStatus:
    return next(c.status for c in checks if needle in c.claim)


def test_verifier_flags_claims_the_measurements_contradict() -> None:
    checks = verify(parse(__import__("json").dumps(ANSWER)), facts(), CLASSES)
    # brightness: measured d = +0.10, so "dark" and "brightness lower" contradict the numbers
    assert status_of(checks, "brightness lower") is ClaimStatus.UNSUPPORTED
    assert status_of(checks, "sharpness lower") is ClaimStatus.SUPPORTED  # d = -1.6
    assert status_of(checks, "3 → 8") is ClaimStatus.SUPPORTED
    assert status_of(checks, "2 → 7") is ClaimStatus.UNSUPPORTED  # never measured
    assert status_of(checks, "7 as 1") is ClaimStatus.UNSUPPORTED  # from the free text
    assert status_of(checks, "40% of errors") is ClaimStatus.SUPPORTED
    unsupported = [c for c in checks if c.status is ClaimStatus.UNSUPPORTED]
    assert {"+0.10" in c.evidence for c in unsupported if "brightness" in c.claim} == {True}


def test_a_contradicting_llm_summary_is_marked_not_hidden() -> None:
    backend = FakeBackend([ANSWER])
    record = summarize_cluster(facts(), backend, CLASSES)
    assert record.source is SummarySource.LLM and record.model == "fake"
    prompt, sent_schema, _ = backend.calls[0]
    assert '"cohens_d": -1.6' in prompt and '"share_of_all_errors": 0.4' in prompt
    assert sent_schema == schema(CLASSES, SummaryLimits())
    checks = verify(record.summary, facts(), CLASSES)
    assert any(c.status is ClaimStatus.UNSUPPORTED for c in checks)


def test_fallback_summary_without_a_model_passes_its_own_verifier() -> None:
    record = summarize_cluster(facts(), None, CLASSES)
    assert record.source is SummarySource.NUMBERS and record.model == ""
    s = record.summary
    assert "3 → 8" in s.title and "blurrier" in s.title
    assert s.fix_kind.value == "augmentation"
    checks = verify(s, facts(), CLASSES)
    assert checks and all(c.status is ClaimStatus.SUPPORTED for c in checks)
    assert summarize_cluster(facts(), None, CLASSES) == record  # deterministic


def test_unusable_output_falls_back_with_the_reason() -> None:
    record = summarize_cluster(facts(), FakeBackend(['{"title": "x"']), CLASSES)
    assert record.source is SummarySource.NUMBERS
    assert "not valid JSON" in record.note


def test_a_model_that_cannot_load_gives_the_numbers_for_every_cluster(tmp_path) -> None:
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(LlmUnavailable, match="not a GGUF"):
        LlamaCppBackend(not_gguf)
    with pytest.raises(LlmUnavailable, match="no model file"):
        LlamaCppBackend(tmp_path / "missing.gguf")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    backend = LlamaCppBackend(broken)  # checked, not loaded yet
    records = summarize_clusters([facts(), facts(id="c-2", rank=2)], backend, CLASSES)
    assert [r.source for r in records] == [SummarySource.NUMBERS] * 2
    import importlib.util

    # The worker's loader says why: llama.cpp rejects (or crashes on) the file, or is missing.
    reason = "broken.gguf" if importlib.util.find_spec("llama_cpp") else "not installed"
    assert all(reason in r.note and "from the numbers instead" in r.note for r in records)


def test_summaries_are_cached_by_facts_and_model() -> None:
    store = DictStore()
    backend = FakeBackend([ANSWER])
    first = summarize_cluster(facts(), backend, CLASSES, cache=store)
    again = summarize_cluster(facts(), backend, CLASSES, cache=store)  # no answer left: cached
    assert again.cached and again.summary == first.summary and len(backend.calls) == 1
    other_model = FakeBackend([ANSWER], key="another-model")
    summarize_cluster(facts(), other_model, CLASSES, cache=store)
    assert len(other_model.calls) == 1  # a different model is not served the cache
    changed = FakeBackend([ANSWER])
    summarize_cluster(facts(size=41), changed, CLASSES, cache=store)
    assert len(changed.calls) == 1  # different facts, different prompt


def test_cancel_stops_generation_and_caches_nothing() -> None:
    cancel = threading.Event()
    progress = Progress(cancel=cancel)
    store = DictStore()

    def answer(_prompt, _schema):
        cancel.set()  # the user presses cancel while the model streams
        return __import__("json").dumps(ANSWER)

    with pytest.raises(Cancelled):
        summarize_cluster(facts(), FakeBackend(answer), CLASSES, cache=store, progress=progress)
    assert store.data == {}


def test_vision_hypothesis_prompt_parse_and_verify_with_a_fake_backend() -> None:
    from detective.llm.vision import FailureFacts, check_failure, hypothesize_failure

    f = FailureFacts(
        "val",
        17,
        "3",
        "8",
        0.91,
        {"brightness": (0.10, 0.40, 0.05), "sharpness": (0.95, 1.0, 0.2)},
    )
    answer = {
        "description": "A thin digit on a black background.",
        "reasoning": "The loop is closed like an 8; the image is blurry.",
        "hypothesis": "A 3 written with closed loops, read as 8.",
        "properties": [{"property": "brightness", "direction": "lower"}],
        "confusions": [{"true": "3", "pred": "8"}],
    }
    with pytest.raises(LlmUnavailable):
        hypothesize_failure(f, b"png", FakeBackend([answer]), CLASSES)  # text-only model
    backend = FakeBackend([answer], multimodal=True)
    record = hypothesize_failure(f, b"png", backend, CLASSES, cache=DictStore())
    prompt, _, images = backend.calls[0]
    assert images == (b"png",) and "literally visible" in prompt and '"z_score": -6.0' in prompt
    assert record.target_id == "val:17"
    assert status_of(record.checks, "brightness lower") is ClaimStatus.SUPPORTED  # z = -6
    assert status_of(record.checks, "blurry") is ClaimStatus.UNSUPPORTED  # z = -0.25
    assert status_of(record.checks, "3 → 8") is ClaimStatus.SUPPORTED
    assert check_failure(record.hypothesis, f, CLASSES) == record.checks
