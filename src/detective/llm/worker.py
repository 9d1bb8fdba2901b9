"""The child process that runs llama.cpp: `python -m detective.llm.worker`.

llama.cpp is native code: a build that does not suit the CPU segfaults, a model too large for the
machine is killed by the OOM killer, a bad file can hang the loader. Run here, any of these ends
this process only; the parent (`llamacpp.LlamaCppBackend`) reports it and carries on with the
summaries from the numbers. This is the only module that imports llama_cpp.

Protocol: JSON lines. The parent writes requests on stdin, the worker answers on stdout.
  {"op": "load", "path", "options": {...}, "chat": bool|null, "projector": str|null}
      → {"event": "loaded", "chat": bool, "version": llama_cpp.__version__}
  {"op": "generate", "prompt", "schema", "max_tokens", "images": [base64 PNG, ...]}
      → {"event": "piece", "text"} ... then {"event": "done", "text"}
  {"op": "cancel"}  → the generation in flight stops: {"event": "cancelled"}
Any failure answers {"event": "error", "kind": ErrorKind, "message"}. End of stdin (the parent
closed the pipe or died) ends the worker.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import sys
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import IO, Any


class ErrorKind(StrEnum):
    NOT_INSTALLED = "not_installed"  # llama_cpp cannot be imported
    LOAD = "load"  # llama.cpp refused the file
    OUT_OF_MEMORY = "out_of_memory"  # an allocation failed (reported, not killed)
    GENERATE = "generate"  # generation raised
    PROTOCOL = "protocol"  # a request the worker does not understand


class _Cancelled(Exception):
    pass


class _Engine:
    """The llama.cpp side: one loaded model, grammars compiled once per schema."""

    def __init__(self) -> None:
        self.llm: Any = None
        self.llama_cpp: Any = None
        self.chat = False
        self.grammars: dict[str, Any] = {}

    def load(self, request: dict[str, Any]) -> dict[str, Any]:
        import llama_cpp  # ImportError is reported as NOT_INSTALLED

        self.llama_cpp = llama_cpp
        handler = None
        if request.get("projector"):
            handler = _vision_handler(llama_cpp, Path(request["projector"]))
        self.llm = llama_cpp.Llama(
            model_path=request["path"], verbose=False, chat_handler=handler, **request["options"]
        )
        template = self.llm.metadata.get("tokenizer.chat_template")
        chat = request.get("chat")
        self.chat = bool(template) if chat is None else bool(chat)
        return {"chat": self.chat, "version": str(getattr(llama_cpp, "__version__", "?"))}

    def _grammar(self, schema: dict[str, Any]) -> Any:
        text = json.dumps(schema, sort_keys=True)
        if text not in self.grammars:
            self.grammars[text] = self.llama_cpp.LlamaGrammar.from_json_schema(text, verbose=False)
        return self.grammars[text]

    def generate(
        self, request: dict[str, Any], emit: Callable[[str], None], cancelled: threading.Event
    ) -> str:
        if self.llm is None:
            raise RuntimeError("generate before load")
        images = [base64.b64decode(i) for i in request.get("images", ())]
        common = {
            "grammar": self._grammar(request["schema"]),
            "max_tokens": int(request["max_tokens"]),
            "temperature": 0.0,  # greedy: reproducible answers, which the session cache needs
            "stream": True,
        }
        prompt = request["prompt"]
        if self.chat or images:
            content: Any = prompt
            if images:
                content = [
                    *(
                        {
                            "type": "image_url",
                            "image_url": {
                                "url": "data:image/png;base64," + base64.b64encode(i).decode()
                            },
                        }
                        for i in images
                    ),
                    {"type": "text", "text": prompt},
                ]
            stream = self.llm.create_chat_completion(
                messages=[{"role": "user", "content": content}], **common
            )

            def piece(chunk: dict[str, Any]) -> str:
                return chunk["choices"][0].get("delta", {}).get("content") or ""
        else:
            stream = self.llm.create_completion(prompt, **common)

            def piece(chunk: dict[str, Any]) -> str:
                return chunk["choices"][0].get("text") or ""

        parts: list[str] = []
        try:
            for chunk in stream:
                if cancelled.is_set():
                    raise _Cancelled()
                text = piece(chunk)
                if text:
                    parts.append(text)
                    emit(text)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        return "".join(parts)


def _vision_handler(llama_cpp: Any, projector: Path) -> Any:
    """A chat handler that feeds images through the projector (LLaVA-style mmproj GGUF)."""
    from llama_cpp import llama_chat_format as formats

    for name in ("MTMDChatHandler", "Llava15ChatHandler"):
        cls = getattr(formats, name, None)
        if cls is not None:
            return cls(clip_model_path=str(projector), verbose=False)
    raise RuntimeError(
        f"this llama-cpp-python ({getattr(llama_cpp, '__version__', '?')}) has no vision handler"
    )


def _error_kind(e: BaseException, default: ErrorKind) -> ErrorKind:
    if isinstance(e, MemoryError):
        return ErrorKind.OUT_OF_MEMORY
    text = str(e).lower()
    if "out of memory" in text or "failed to allocate" in text or "cudamalloc" in text:
        return ErrorKind.OUT_OF_MEMORY
    return default


def serve(stdin: IO[str], stdout: IO[str]) -> int:
    lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        with lock:
            stdout.write(json.dumps(message) + "\n")
            stdout.flush()

    requests: queue.Queue[dict[str, Any] | None] = queue.Queue()
    cancelled = threading.Event()

    def read() -> None:
        # A reader thread, so a cancel arrives while the main thread generates.
        for line in stdin:
            try:
                message = json.loads(line)
            except ValueError:
                send({"event": "error", "kind": ErrorKind.PROTOCOL, "message": "not JSON"})
                continue
            if message.get("op") == "cancel":
                cancelled.set()
            else:
                requests.put(message)
        requests.put(None)

    threading.Thread(target=read, daemon=True).start()
    engine = _Engine()
    while (request := requests.get()) is not None:
        op = request.get("op")
        if op == "load":
            try:
                send({"event": "loaded", **engine.load(request)})
            except ImportError as e:
                send({"event": "error", "kind": ErrorKind.NOT_INSTALLED, "message": str(e)})
            except Exception as e:  # llama.cpp reports load failures as ValueError/RuntimeError
                send({"event": "error", "kind": _error_kind(e, ErrorKind.LOAD), "message": str(e)})
        elif op == "generate":
            cancelled.clear()
            try:
                text = engine.generate(
                    request, lambda t: send({"event": "piece", "text": t}), cancelled
                )
                send({"event": "done", "text": text})
            except _Cancelled:
                send({"event": "cancelled"})
            except Exception as e:
                kind = _error_kind(e, ErrorKind.GENERATE)
                send({"event": "error", "kind": kind, "message": f"{type(e).__name__}: {e}"})
        else:
            send({"event": "error", "kind": ErrorKind.PROTOCOL, "message": f"unknown op {op!r}"})
    return 0


def main() -> int:
    # The protocol owns stdout: anything llama.cpp or a library prints goes to stderr instead.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return serve(sys.stdin, out)


if __name__ == "__main__":
    raise SystemExit(main())
