"""What a language-model backend must do: complete a prompt into JSON that fits a schema."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable


class LlmUnavailable(Exception):
    """The model cannot be used (missing file, not a GGUF, llama_cpp not installed, load error);
    the message says why, for the user. Callers fall back to the deterministic summary."""


class LlmOutputError(Exception):
    """The model answered, but not with a usable summary (invalid JSON, wrong fields)."""


@runtime_checkable
class Backend(Protocol):
    #: Shown in reports, e.g. "llama.cpp qwen2.5-3b-instruct-q4_k_m.gguf".
    name: str
    #: Identifies the weights (for caching): the same key must mean the same model.
    key: str

    def complete_json(
        self,
        prompt: str,
        schema: dict[str, Any],
        *,
        max_tokens: int,
        on_text: Callable[[str], None] | None = None,
        images: Sequence[bytes] = (),
    ) -> str:
        """The model's answer, constrained to `schema`. `on_text` receives each streamed piece
        (and "" a few times a second while waiting for one) and may raise (e.g. `Cancelled`)
        to stop generation. `images` (PNG bytes) need a
        multimodal model; a text-only backend raises LlmUnavailable when given any."""
        ...
