"""llama-cpp-python backend: a local GGUF file, JSON-schema-constrained output, streamed — run in
a child process (`detective.llm.worker`) so that nothing llama.cpp does can take this one down.

A segfault (a llama.cpp build that does not suit the CPU), the OOM killer, a hang or a file the
loader rejects become a `WorkerFailure`, raised as `LlmWorkerFailed` (an `LlmUnavailable`): the
caller uses the summary from the numbers, with the failure as its note, and carries on.

The output is constrained with a GBNF grammar compiled from the JSON schema, so even a small or
base model returns parseable JSON; greedy decoding makes answers reproducible, which the session
cache relies on. Instruct models whose GGUF carries a chat template are prompted through it;
others get the raw prompt. GPU users offload layers with `n_gpu_layers` (`--llm-gpu-layers`).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, NoReturn

from detective.llm.backend import LlmUnavailable

_MAGIC = b"GGUF"
_REBUILD = (
    'rebuild it for this CPU: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall '
    "--no-cache-dir llama-cpp-python"
)


class FailureKind(StrEnum):
    CRASHED = "crashed"  # killed by a signal other than SIGKILL (SIGSEGV, SIGILL, SIGABRT, ...)
    KILLED = "killed"  # SIGKILL: most often the kernel's out-of-memory killer
    OUT_OF_MEMORY = "out_of_memory"  # llama.cpp reported a failed allocation
    EXITED = "exited"  # the process ended with an exit code
    TIMEOUT = "timeout"  # no answer within the timeout: stopped
    LOAD = "load"  # llama.cpp rejected the file
    NOT_INSTALLED = "not_installed"  # llama_cpp cannot be imported


@dataclass(frozen=True)
class WorkerFailure:
    """Why the model could not be used, as a user reads it in the finding's notes."""

    kind: FailureKind
    model: str  # the GGUF file name
    during: str  # "loading" or "generating"
    signal: int | None = None
    returncode: int | None = None
    detail: str = ""  # llama.cpp's message, or the tail of the worker's stderr

    def note(self) -> str:
        what = f"the local model {self.model}"
        if self.kind is FailureKind.CRASHED:
            name = _signal_name(self.signal)
            head = f"{what} crashed while {self.during} (signal {self.signal}, {name})"
            hint = f"if llama-cpp-python was compiled on this machine, {_REBUILD}"
        elif self.kind is FailureKind.KILLED:
            head = f"{what} was killed while {self.during} (signal {self.signal}, SIGKILL)"
            hint = (
                "usually the out-of-memory killer: use a smaller GGUF (e.g. Q4_K_M, ≤3B) "
                "or fewer --llm-gpu-layers"
            )
        elif self.kind is FailureKind.OUT_OF_MEMORY:
            head = f"{what} ran out of memory while {self.during}"
            hint = "use a smaller GGUF or fewer --llm-gpu-layers"
        elif self.kind is FailureKind.EXITED:
            head = f"{what} stopped while {self.during} (exit code {self.returncode})"
            hint = ""
        elif self.kind is FailureKind.TIMEOUT:
            head = f"{what} did not answer in time while {self.during}, so it was stopped"
            hint = "a model this slow on this machine is better replaced by a smaller one"
        elif self.kind is FailureKind.LOAD:
            head = f"llama.cpp could not load {self.model}"
            hint = ""
        else:
            head = "llama-cpp-python is not installed"
            hint = (
                'pip install -e ".[llm]" with CMAKE_ARGS="-DGGML_NATIVE=OFF" '
                '(or CMAKE_ARGS="-DGGML_CUDA=on" for GPU offload)'
            )
        detail = f": {self.detail}" if self.detail else ""
        return f"{head}{detail} — summaries from the numbers instead" + (
            f" ({hint})" if hint else ""
        )


class LlmWorkerFailed(LlmUnavailable):
    """The worker crashed, hung, ran out of memory or could not load: the model is unusable for
    the rest of this run."""

    def __init__(self, failure: WorkerFailure) -> None:
        super().__init__(failure.note())
        self.failure = failure


class LlmGenerationError(Exception):
    """Generation raised inside the worker (e.g. the prompt overflows the context); the model
    stays usable for the next prompt."""


@dataclass(frozen=True)
class Timeouts:
    """Seconds without a word from the worker before it counts as hung. Generous: a 7B model on
    two CPU cores takes minutes to read a long prompt."""

    load_s: float = 300.0
    first_piece_s: float = 300.0  # prompt processing comes before the first piece
    piece_s: float = 120.0
    cancel_s: float = 10.0


def _signal_name(number: int | None) -> str:
    try:
        return signal.Signals(number or 0).name
    except ValueError:
        return "unknown signal"


def model_key(path: str | Path) -> str:
    """A cheap identity of a model file: size plus hashes of its first and last MiB (hashing a
    5 GB file whole would cost seconds on every run)."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read(1 << 20))
    return f"{path.name}:{h.hexdigest()[:16]}"


def gpu_layers_default(device_type: str = "cpu", flag: int | None = None) -> int:
    """--llm-gpu-layers when given; else the older env var DETECTIVE_LLM_GPU_LAYERS; else all
    layers on a CUDA run and none on CPU."""
    if flag is not None:
        return flag
    env = os.environ.get("DETECTIVE_LLM_GPU_LAYERS")
    if env is not None:
        try:
            return int(env)
        except ValueError as e:
            raise LlmUnavailable(f"DETECTIVE_LLM_GPU_LAYERS={env!r} is not an integer") from e
    return -1 if device_type == "cuda" else 0


class _Worker:
    """One child process and the threads that read its stdout (messages) and stderr (a tail)."""

    def __init__(self, command: Sequence[str]) -> None:
        env = dict(os.environ)
        # The child imports this very detective (a checkout may not be the installed one).
        here = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=env,
            # Its own session: a Ctrl-C in the terminal reaches only us; we cancel it cleanly.
            start_new_session=True,
        )
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.stderr: collections.deque[str] = collections.deque(maxlen=20)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()
        threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()
        self._finalizer = weakref.finalize(self, _stop, self.proc)

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                self.messages.put(json.loads(line))
            except ValueError:
                self.stderr.append(line.rstrip())
        self.messages.put(None)  # end of stream: the process is gone

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            if line.strip():
                self.stderr.append(line.rstrip())

    def send(self, message: dict[str, Any]) -> bool:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False  # it died; the next receive reports how

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next message; None when the process ended; queue.Empty on timeout."""
        return self.messages.get(timeout=timeout)

    def exit_status(self) -> int | None:
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        self._finalizer()


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            assert proc.stdin is not None
            proc.stdin.close()  # a polite stop: the worker ends at end of input
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.close()


class LlamaCppBackend:
    def __init__(
        self,
        path: str | Path,
        *,
        n_gpu_layers: int = 0,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        seed: int = 0,
        chat: bool | None = None,
        projector: str | Path | None = None,
        lazy: bool = True,
        timeouts: Timeouts | None = None,
    ) -> None:
        """Check the file now; start the worker and load the weights on first use (so cached
        summaries cost no load). `chat`: use the GGUF's chat template (None: when it has one).
        `projector`: a multimodal projector (mmproj) GGUF."""
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise LlmUnavailable(f"no model file at {self.path}")
        with open(self.path, "rb") as f:
            if f.read(4) != _MAGIC:
                raise LlmUnavailable(f"{self.path} is not a GGUF file (wrong magic bytes)")
        self._projector = Path(projector).expanduser() if projector is not None else None
        if self._projector is not None and not self._projector.is_file():
            raise LlmUnavailable(f"no projector file at {self._projector}")
        self._options = {
            "n_ctx": n_ctx,
            "n_gpu_layers": n_gpu_layers,
            "n_threads": n_threads,
            "seed": seed,
        }
        self._chat = chat
        self.chat = bool(chat)
        self.multimodal = projector is not None
        self.n_gpu_layers = n_gpu_layers
        self.timeouts = timeouts or Timeouts()
        self._command = [sys.executable, "-m", "detective.llm.worker"]
        self._worker: _Worker | None = None
        self.llama_version = ""  # llama-cpp-python's, as the worker reports it once loaded
        self._failure: WorkerFailure | None = None
        self.name = f"llama.cpp {self.path.name}"
        self.key = model_key(self.path) + (
            ":" + model_key(self._projector) if self._projector is not None else ""
        )
        if not lazy:
            self.load()

    @property
    def loaded(self) -> bool:
        return self._worker is not None

    def load(self, on_tick: Callable[[str], None] | None = None) -> None:
        """Start the worker and load the weights (once); LlmWorkerFailed says why either fails.
        `on_tick("")` is called while waiting and may raise to abandon the load (the worker is
        stopped)."""
        if self._failure is not None:
            raise LlmWorkerFailed(self._failure)
        if self._worker is not None:
            return
        try:
            self._worker = _Worker(self._command)
        except OSError as e:
            self._fail(FailureKind.EXITED, "loading", detail=f"could not start the worker: {e}")
        self._worker.send(
            {
                "op": "load",
                "path": str(self.path),
                "options": self._options,
                "chat": self._chat,
                "projector": str(self._projector) if self._projector else None,
            }
        )
        message = self._next("loading", self.timeouts.load_s, on_tick)
        if message.get("event") != "loaded":
            self._unexpected(message, "loading")
        self.chat = bool(message.get("chat"))
        self.llama_version = str(message.get("version", "?"))

    def close(self) -> None:
        """Stop the worker (a later call starts a new one)."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def __enter__(self) -> LlamaCppBackend:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def complete_json(
        self,
        prompt: str,
        schema: dict[str, Any],
        *,
        max_tokens: int,
        on_text: Callable[[str], None] | None = None,
        images: Sequence[bytes] = (),
    ) -> str:
        if images and not self.multimodal:
            raise LlmUnavailable(f"{self.path.name} has no vision projector (--llm-projector)")
        self.load(on_text)
        assert self._worker is not None
        self._worker.send(
            {
                "op": "generate",
                "prompt": prompt,
                "schema": schema,
                "max_tokens": max_tokens,
                "images": [base64.b64encode(i).decode() for i in images],
            }
        )
        timeout = self.timeouts.first_piece_s
        while True:
            message = self._next("generating", timeout, on_text)
            event = message.get("event")
            if event == "piece":
                timeout = self.timeouts.piece_s
                if on_text is not None:
                    try:
                        on_text(message.get("text", ""))
                    except BaseException:
                        self._cancel()
                        raise
            elif event == "done":
                return str(message.get("text", ""))
            else:
                self._unexpected(message, "generating")

    def _next(
        self, during: str, timeout: float, on_text: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        """The worker's next message. While waiting, `on_text("")` ticks a few times a second
        so a cancel (raised from it) is seen before the first piece arrives."""
        assert self._worker is not None
        waited = 0.0
        tick = 0.2
        while True:
            try:
                message = self._worker.receive(min(tick, timeout - waited))
                break
            except queue.Empty:
                waited += tick
                if waited >= timeout:
                    self._fail(FailureKind.TIMEOUT, during, detail=f"no answer for {timeout:.0f} s")
                if on_text is not None:
                    try:
                        on_text("")
                    except BaseException:
                        # Mid-load a worker cannot stop cleanly: end it (a later call restarts).
                        if during == "generating":
                            self._cancel()
                        else:
                            self.close()
                        raise
        if message is None:  # the process is gone: how?
            code = self._worker.exit_status()
            if code is not None and code < 0:
                sig = -code
                kind = FailureKind.KILLED if sig == signal.SIGKILL else FailureKind.CRASHED
                self._fail(kind, during, signal=sig, detail=self._stderr_tail())
            self._fail(FailureKind.EXITED, during, returncode=code, detail=self._stderr_tail())
        return message

    def _unexpected(self, message: dict[str, Any], during: str) -> NoReturn:
        kind = message.get("kind")
        detail = str(message.get("message", message))
        if message.get("event") == "error" and kind == "generate":
            raise LlmGenerationError(detail)
        failure = {
            "not_installed": FailureKind.NOT_INSTALLED,
            "out_of_memory": FailureKind.OUT_OF_MEMORY,
            "load": FailureKind.LOAD,
        }.get(str(kind), FailureKind.LOAD if during == "loading" else FailureKind.EXITED)
        self._fail(failure, during, detail=detail)

    def _cancel(self) -> None:
        """Stop the generation in flight; a worker that does not stop in time is ended."""
        worker = self._worker
        if worker is None:
            return
        if worker.send({"op": "cancel"}):
            try:
                while True:
                    message = worker.receive(self.timeouts.cancel_s)
                    if message is None or message.get("event") in ("cancelled", "done", "error"):
                        break
            except queue.Empty:
                message = None
            if message is not None:
                return  # it stopped and stays loaded
        self.close()

    def _stderr_tail(self) -> str:
        lines = list(self._worker.stderr) if self._worker is not None else []
        return " | ".join(lines[-3:])[-400:]

    def _fail(self, kind: FailureKind, during: str, **fields: Any) -> NoReturn:
        self._failure = WorkerFailure(kind, self.path.name, during, **fields)
        self.close()
        raise LlmWorkerFailed(self._failure)
