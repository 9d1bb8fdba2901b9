"""llama-cpp-python backend: a local GGUF file, JSON-schema-constrained output, streamed.

The output is constrained with a GBNF grammar compiled from the JSON schema
(`LlamaGrammar.from_json_schema`), so even a small or base model returns parseable JSON; greedy
decoding (temperature 0) makes answers reproducible, which is what the session cache relies on.
Instruct models whose GGUF carries a chat template are prompted through it; others get the raw
prompt. GPU users offload layers with `n_gpu_layers` (-1 = all; env DETECTIVE_LLM_GPU_LAYERS).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from detective.llm.backend import LlmUnavailable

_MAGIC = b"GGUF"


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


def gpu_layers_default(device_type: str = "cpu") -> int:
    """DETECTIVE_LLM_GPU_LAYERS when set; all layers on a CUDA run; none on CPU."""
    env = os.environ.get("DETECTIVE_LLM_GPU_LAYERS")
    if env is not None:
        try:
            return int(env)
        except ValueError as e:
            raise LlmUnavailable(f"DETECTIVE_LLM_GPU_LAYERS={env!r} is not an integer") from e
    return -1 if device_type == "cuda" else 0


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
    ) -> None:
        """Check the file now, load the weights on first use (so cached summaries cost no
        load); LlmUnavailable says why either fails. `chat`: use the GGUF's chat template
        (None: when it has one). `projector`: a multimodal projector (mmproj) GGUF."""
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise LlmUnavailable(f"no model file at {self.path}")
        with open(self.path, "rb") as f:
            if f.read(4) != _MAGIC:
                raise LlmUnavailable(f"{self.path} is not a GGUF file (wrong magic bytes)")
        self._options = {
            "n_ctx": n_ctx,
            "n_gpu_layers": n_gpu_layers,
            "n_threads": n_threads,
            "seed": seed,
        }
        self._projector = Path(projector).expanduser() if projector is not None else None
        self._chat = chat
        self._llm: Any = None
        self.chat = bool(chat)
        self.multimodal = projector is not None
        self.n_gpu_layers = n_gpu_layers
        self.name = f"llama.cpp {self.path.name}"
        self.key = model_key(self.path) + (
            ":" + model_key(self._projector)
            if self._projector and self._projector.is_file()
            else ""
        )
        self._grammars: dict[str, Any] = {}
        if not lazy:
            self.load()

    def load(self) -> None:
        """Load the weights (once); raises LlmUnavailable with the reason."""
        if self._llm is not None:
            return
        try:
            import llama_cpp
        except ImportError as e:
            raise LlmUnavailable(
                "llama-cpp-python is not installed: pip install 'detective[llm]' "
                "(with CMAKE_ARGS=-DGGML_CUDA=on for GPU offload)"
            ) from e
        self._llama_cpp = llama_cpp
        handler = None
        if self._projector is not None:
            handler = _vision_handler(llama_cpp, self._projector)
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(self.path), verbose=False, chat_handler=handler, **self._options
            )
        except Exception as e:  # llama.cpp reports load failures as ValueError/RuntimeError
            raise LlmUnavailable(f"llama.cpp could not load {self.path}: {e}") from e
        template = self._llm.metadata.get("tokenizer.chat_template")
        self.chat = bool(template) if self._chat is None else self._chat

    def _grammar(self, schema: dict[str, Any]) -> Any:
        text = json.dumps(schema, sort_keys=True)
        if text not in self._grammars:
            self._grammars[text] = self._llama_cpp.LlamaGrammar.from_json_schema(
                text, verbose=False
            )
        return self._grammars[text]

    def complete_json(
        self,
        prompt: str,
        schema: dict[str, Any],
        *,
        max_tokens: int,
        on_text: Callable[[str], None] | None = None,
        images: Sequence[bytes] = (),
    ) -> str:
        self.load()
        if images and not self.multimodal:
            raise LlmUnavailable(f"{self.path.name} has no vision projector (--llm-projector)")
        grammar = self._grammar(schema)
        common = {"grammar": grammar, "max_tokens": max_tokens, "temperature": 0.0, "stream": True}
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
            stream = self._llm.create_chat_completion(
                messages=[{"role": "user", "content": content}], **common
            )

            def piece(chunk: dict[str, Any]) -> str:
                return chunk["choices"][0].get("delta", {}).get("content") or ""
        else:
            stream = self._llm.create_completion(prompt, **common)

            def piece(chunk: dict[str, Any]) -> str:
                return chunk["choices"][0].get("text") or ""

        parts: list[str] = []
        try:
            for chunk in stream:
                text = piece(chunk)
                if text:
                    parts.append(text)
                    if on_text is not None:
                        on_text(text)  # may raise Cancelled: generation stops here
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        return "".join(parts)


def _vision_handler(llama_cpp: Any, projector: Path) -> Any:
    """A chat handler that feeds images through the projector (LLaVA-style mmproj GGUF)."""
    if not projector.is_file():
        raise LlmUnavailable(f"no projector file at {projector}")
    from llama_cpp import llama_chat_format as formats

    for name in ("MTMDChatHandler", "Llava15ChatHandler"):
        cls = getattr(formats, name, None)
        if cls is not None:
            try:
                return cls(clip_model_path=str(projector), verbose=False)
            except Exception as e:
                raise LlmUnavailable(f"could not load the projector {projector}: {e}") from e
    raise LlmUnavailable(
        f"this llama-cpp-python ({getattr(llama_cpp, '__version__', '?')}) has no vision handler"
    )
