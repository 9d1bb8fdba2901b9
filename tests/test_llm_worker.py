"""llama.cpp runs in a child process: a crash, a kill, a hang or a load failure there becomes a
note and the summary from the numbers; this process carries on. The worker under test is the real
`python -m detective.llm.worker`, importing a stand-in llama_cpp (tests/fake_llama) that
misbehaves on request — except the garbage-GGUF test, which uses the real llama.cpp."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from test_llm import CLASSES, DictStore, facts

from detective.core.progress import Cancelled, Progress
from detective.llm.llamacpp import (
    FailureKind,
    LlamaCppBackend,
    LlmWorkerFailed,
    Timeouts,
    gpu_layers_default,
)
from detective.llm.summary import SummarySource, summarize_cluster, summarize_clusters

FAKE_LLAMA = Path(__file__).parent / "fake_llama"
QUICK = Timeouts(load_s=60, first_piece_s=60, piece_s=3.0, cancel_s=5.0)


@pytest.fixture
def gguf(tmp_path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(range(256)) * 8)
    return path


@pytest.fixture
def fake_llama(monkeypatch):
    """Set the stand-in llama_cpp's mode for the workers started after it."""
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(FAKE_LLAMA), os.environ.get("PYTHONPATH", "")])
    )

    def mode(name: str) -> None:
        monkeypatch.setenv("FAKE_LLAMA_MODE", name)

    return mode


def two_clusters():
    return (facts(), facts(id="c-22222222", rank=2))


def test_a_working_worker_streams_a_summary_and_stays_up_for_the_next(gguf, fake_llama) -> None:
    fake_llama("ok")
    pieces: list[float] = []
    with LlamaCppBackend(gguf, timeouts=QUICK) as backend:
        records = summarize_clusters(
            two_clusters(),
            backend,
            CLASSES,
            cache=DictStore(),
            progress=Progress(on_update=lambda u: pieces.append(u.fraction)),
        )
        pid = backend._worker.proc.pid
        assert [r.source for r in records] == [SummarySource.LLM, SummarySource.LLM]
        assert records[0].summary.title == "3 read as 8" and not records[0].note
        assert pieces, "pieces streamed back as progress"
    assert backend._worker is None  # closed with the block
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # and its process is gone (reaped), not left behind


@pytest.mark.parametrize(
    ("mode", "kind", "words"),
    [
        ("crash_generate", FailureKind.CRASHED, "crashed while generating (signal 11, SIGSEGV)"),
        ("crash_load", FailureKind.CRASHED, "crashed while loading (signal 11, SIGSEGV)"),
        ("kill_generate", FailureKind.KILLED, "out-of-memory killer"),
        ("load_error", FailureKind.LOAD, "could not load model.gguf: Failed to load model"),
        ("oom_load", FailureKind.OUT_OF_MEMORY, "ran out of memory while loading"),
        ("not_installed", FailureKind.NOT_INSTALLED, "llama-cpp-python is not installed"),
    ],
)
def test_a_failing_worker_gives_the_numbers_and_a_note(gguf, fake_llama, mode, kind, words) -> None:
    fake_llama(mode)
    backend = LlamaCppBackend(gguf, timeouts=QUICK)
    records = summarize_clusters(two_clusters(), backend, CLASSES, cache=DictStore())
    assert [r.source for r in records] == [SummarySource.NUMBERS, SummarySource.NUMBERS]
    for r in records:  # every cluster says why, and the summary is the numbers' own
        assert words in r.note and "summaries from the numbers instead" in r.note
        assert r.summary == summarize_cluster(r_facts(r), None, CLASSES).summary
    assert backend._failure is not None and backend._failure.kind is kind
    assert backend._worker is None  # nothing left running
    # The model is not retried for every later prompt: the failure is remembered.
    with pytest.raises(LlmWorkerFailed):
        backend.load()


def r_facts(record):
    return next(f for f in two_clusters() if f.id == record.cluster_id)


def test_a_hung_worker_is_stopped_after_the_timeout(gguf, fake_llama) -> None:
    fake_llama("hang_generate")
    backend = LlamaCppBackend(gguf, timeouts=Timeouts(first_piece_s=60, piece_s=1.0))
    record = summarize_clusters((facts(),), backend, CLASSES)[0]
    assert record.source is SummarySource.NUMBERS
    assert "did not answer in time while generating" in record.note
    assert backend._failure.kind is FailureKind.TIMEOUT and backend._worker is None


def test_cancel_stops_the_generation_and_the_worker_stays_loaded(
    gguf, fake_llama, monkeypatch
) -> None:
    fake_llama("ok")
    monkeypatch.setenv("FAKE_LLAMA_DELAY", "0.2")  # slow enough to cancel mid-answer
    cancel = threading.Event()
    store = DictStore()
    with LlamaCppBackend(gguf, timeouts=QUICK) as backend:
        with pytest.raises(Cancelled):
            summarize_cluster(
                facts(),
                backend,
                CLASSES,
                cache=store,
                progress=Progress(on_update=lambda _u: cancel.set(), cancel=cancel),
            )
        assert store.data == {} and backend._failure is None
        pid = backend._worker.proc.pid
        monkeypatch.setenv("FAKE_LLAMA_DELAY", "0")
        again = summarize_cluster(facts(), backend, CLASSES, cache=store)
        assert again.source is SummarySource.LLM
        assert backend._worker.proc.pid == pid  # the same process, not a restart


def test_cancel_is_seen_before_the_first_piece(gguf, fake_llama) -> None:
    fake_llama("hang_generate")  # the first piece comes; then nothing
    cancel = threading.Event()
    cancel.set()
    backend = LlamaCppBackend(gguf, timeouts=Timeouts(first_piece_s=60, piece_s=60, cancel_s=1))
    with pytest.raises(Cancelled):
        summarize_cluster(facts(), backend, CLASSES, progress=Progress(cancel=cancel))
    assert backend._worker is None  # a worker that ignored the cancel was ended


def test_cancel_during_a_long_load_stops_the_worker(gguf, fake_llama) -> None:
    fake_llama("hang_load")
    cancel = threading.Event()
    cancel.set()
    backend = LlamaCppBackend(gguf, timeouts=Timeouts(load_s=600))
    with pytest.raises(Cancelled):
        summarize_cluster(facts(), backend, CLASSES, progress=Progress(cancel=cancel))
    assert backend._worker is None and backend._failure is None  # stopped, not failed


def test_a_load_that_hangs_times_out(gguf, fake_llama) -> None:
    fake_llama("hang_load")
    backend = LlamaCppBackend(gguf, timeouts=Timeouts(load_s=1.0))
    record = summarize_clusters((facts(),), backend, CLASSES)[0]
    assert record.source is SummarySource.NUMBERS
    assert "did not answer in time while loading" in record.note


def test_garbage_gguf_with_the_real_llama_cpp_gives_the_numbers(gguf) -> None:
    pytest.importorskip("llama_cpp")
    backend = LlamaCppBackend(gguf)
    record = summarize_clusters((facts(),), backend, CLASSES)[0]
    assert record.source is SummarySource.NUMBERS
    assert backend._failure.kind in (FailureKind.LOAD, FailureKind.CRASHED)
    assert "summaries from the numbers instead" in record.note


def test_gpu_layers_come_from_the_flag_then_the_env_then_the_device(monkeypatch) -> None:
    monkeypatch.delenv("DETECTIVE_LLM_GPU_LAYERS", raising=False)
    assert gpu_layers_default("cuda") == -1 and gpu_layers_default("cpu") == 0
    assert gpu_layers_default("cuda", 12) == 12
    monkeypatch.setenv("DETECTIVE_LLM_GPU_LAYERS", "7")
    assert gpu_layers_default("cuda") == 7 and gpu_layers_default("cuda", 3) == 3


def test_signal_names_in_notes_are_the_platform_ones() -> None:
    from detective.llm.llamacpp import WorkerFailure

    note = WorkerFailure(FailureKind.CRASHED, "m.gguf", "generating", signal=signal.SIGILL).note()
    assert f"signal {int(signal.SIGILL)}, SIGILL" in note and "GGML_NATIVE=OFF" in note


def test_only_the_worker_process_imports_llama_cpp() -> None:
    import subprocess
    import sys

    code = (
        "import sys, detective.llm.llamacpp, detective.llm.summary, detective.llm.vision, "
        "detective.checks.error_analysis.failure_clusters; print('llama_cpp' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
