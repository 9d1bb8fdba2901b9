"""`detective doctor`: each topic's judgement on planted facts (a problem it must name, a clean
case it must pass), the llama.cpp line through the real worker with a stand-in llama_cpp, and the
command's output and exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_llm_worker import FAKE_LLAMA

from detective.ui.doctor import (
    AmpResult,
    Device,
    LlamaFacts,
    Status,
    TerminalFacts,
    TorchFacts,
    amp_line,
    devices_line,
    llama_facts,
    llama_line,
    python_line,
    serve_line,
    terminal_line,
    torch_line,
)
from detective.ui.exitcodes import ExitCode

SRC = Path(__file__).resolve().parent.parent / "src"


def test_python_below_311_is_a_problem() -> None:
    assert python_line((3, 10, 12), "/usr/bin/python3").status is Status.PROBLEM
    assert python_line((3, 11, 7), "/usr/bin/python3").status is Status.OK


def test_torch_and_its_build_are_named() -> None:
    line = torch_line(TorchFacts("2.14.1", cuda_build="13.0", cudnn=92400))
    assert line.status is Status.OK and line.detail == "2.14.1 (CUDA 13.0, cuDNN 9.24.0)"
    assert "CPU-only build" in torch_line(TorchFacts("2.14.1")).detail
    broken = torch_line(TorchFacts(None, "ImportError: libcudnn.so.9"))
    assert broken.status is Status.PROBLEM and "libcudnn" in broken.detail and broken.fix


def test_a_driver_without_a_usable_gpu_is_a_problem_a_cpu_box_is_not() -> None:
    cpu_box = devices_line(TorchFacts("2.14.1", cpu_cores=2, ram_gib=15.0))
    assert cpu_box.status is Status.OK and "2 cores" in cpu_box.detail
    wrong_build = devices_line(TorchFacts("2.14.1", nvidia_driver=True))
    assert wrong_build.status is Status.PROBLEM and "CPU-only build" in wrong_build.detail
    gpu = devices_line(
        TorchFacts("2.14.1", cuda_build="13.0", devices=(Device("H100", 79.6, 78.1, (9, 0)),))
    )
    assert gpu.status is Status.OK and "cuda:0 H100 (sm_90), 78.1 of 79.6 GiB free" in gpu.detail


def test_amp_on_cpu_is_information_on_a_gpu_a_broken_fp16_is_a_problem() -> None:
    assert amp_line((AmpResult("cpu", "bfloat16", False, "unsupported"),)).status is Status.OK
    assert "works" in amp_line((AmpResult("cpu", "bfloat16", True),)).detail
    broken = (
        AmpResult("cuda:0", "float16", False, "CUBLAS_STATUS_NOT_SUPPORTED"),
        AmpResult("cuda:0", "bfloat16", False, "CUBLAS_STATUS_NOT_SUPPORTED"),
    )
    assert amp_line(broken).status is Status.PROBLEM
    old_gpu = (AmpResult("cuda:0", "float16", True), AmpResult("cuda:0", "bfloat16", False))
    assert amp_line(old_gpu).status is Status.OK  # bf16 needs Ampere; fp16 is enough


def test_the_real_amp_trial_on_this_machine_runs() -> None:
    from detective.ui.doctor import amp_facts

    (cpu,) = amp_facts(0)
    assert cpu.device == "cpu" and cpu.dtype == "bfloat16"


def test_the_amp_trial_is_a_real_training_step_and_catches_a_dtype_that_does_not_take(
    monkeypatch,  # noqa: ANN001
) -> None:
    """Planted: autocast silently a no-op (the conv stays fp32). The trial must say so."""
    import contextlib

    import torch

    from detective.ui.doctor import amp_facts

    if torch.cuda.is_available():
        pytest.skip("the planted fault is CPU-only")
    (clean,) = amp_facts(0)
    monkeypatch.setattr(torch, "autocast", lambda *_a, **_k: contextlib.nullcontext())
    (broken,) = amp_facts(0)
    assert not broken.works and "autocast gave [torch.float32]" in broken.detail
    assert clean.works or "bfloat16" in clean.detail  # this torch may lack CPU bf16


@pytest.mark.skipif("not __import__('torch').cuda.is_available()")
def test_the_amp_trial_on_cuda_passes_fp16_with_its_scaler() -> None:
    from detective.ui.doctor import amp_facts

    results = amp_facts(1)
    assert any(r.works for r in results if r.dtype == "float16"), results


def test_llama_lines() -> None:
    assert llama_line(LlamaFacts(None, None, given=False)).status is Status.SKIPPED
    assert llama_line(LlamaFacts(None, "m.gguf", given=True)).status is Status.PROBLEM
    assert "skipped: no model" in llama_line(LlamaFacts("0.3.36", None, given=False)).detail
    crashed = llama_line(LlamaFacts("0.3.36", "/m/x.gguf", True, failure="crashed (signal 11)"))
    assert crashed.status is Status.PROBLEM and "GGML_NATIVE=OFF" in crashed.fix
    ok = llama_line(LlamaFacts("0.3.36", "/m/x.gguf", False, 1.25, 0.5, 4))
    assert ok.status is Status.OK and "x.gguf loaded in 1.2 s, 4 tokens in 0.5 s" in ok.detail


def test_terminal_size_and_colours() -> None:
    def facts(cols: int, rows: int, colors: str | None) -> TerminalFacts:
        return TerminalFacts("8.2.8", True, cols, rows, colors, "xterm-256color")

    assert terminal_line(facts(120, 40, "truecolor")).status is Status.OK
    assert terminal_line(facts(70, 40, "truecolor")).status is Status.PROBLEM
    assert terminal_line(facts(120, 40, "standard")).status is Status.PROBLEM
    assert terminal_line(TerminalFacts("8.2.8", False, 0, 0, None, "")).status is Status.SKIPPED
    assert serve_line(None).status is Status.SKIPPED and serve_line("1.1.3").status is Status.OK


@pytest.fixture
def worker_env(monkeypatch):
    def mode(name: str) -> None:
        path = os.pathsep.join([str(FAKE_LLAMA), os.environ.get("PYTHONPATH", "")])
        monkeypatch.setenv("PYTHONPATH", path)
        monkeypatch.setenv("FAKE_LLAMA_MODE", name)
        monkeypatch.syspath_prepend(str(FAKE_LLAMA))  # so the doctor finds (not imports) it

    return mode


@pytest.fixture
def gguf(tmp_path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF" + b"\x01" * 512)
    return path


def test_llama_generation_runs_in_the_worker_and_is_timed(gguf, worker_env) -> None:
    worker_env("ok")
    f = llama_facts(gguf, given=True)
    assert not f.failure and f.tokens >= 1 and f.version == "0.0-fake"  # the worker's llama_cpp
    assert f.load_s is not None and f.generate_s is not None


def test_a_crashing_llama_is_a_problem_and_the_doctor_survives(gguf, worker_env) -> None:
    worker_env("crash_load")
    line = llama_line(llama_facts(gguf, given=True))
    assert (
        line.status is Status.PROBLEM
        and "crashed while loading (signal 11, SIGSEGV)" in line.detail
    )


def run_doctor(*args: str, mode: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(FAKE_LLAMA), str(SRC)])
    env["FAKE_LLAMA_MODE"] = mode
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "detective", "doctor", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_doctor_command_exit_codes(gguf) -> None:
    healthy = run_doctor("--llm", str(gguf), mode="ok")
    topics = [line.split()[1] for line in healthy.stdout.splitlines() if line.strip()]
    assert topics[:8] == [
        "python",
        "torch",
        "devices",
        "amp",
        "llama.cpp",
        "textual",
        "terminal",
        "textual-serve",
    ]
    assert healthy.returncode == ExitCode.OK, healthy.stdout
    assert "Traceback" not in healthy.stderr
    crashed = run_doctor("--llm", str(gguf), mode="crash_load")
    assert crashed.returncode == ExitCode.ENVIRONMENT, crashed.stdout
    assert "problem" in crashed.stdout and "signal 11" in crashed.stdout
    assert "Traceback" not in crashed.stderr


def test_doctor_with_a_missing_model_file_is_a_problem(tmp_path) -> None:
    result = run_doctor("--llm", str(tmp_path / "absent.gguf"), mode="ok")
    assert result.returncode == ExitCode.ENVIRONMENT
    assert "no model file at" in result.stdout
