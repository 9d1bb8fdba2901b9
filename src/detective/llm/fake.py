"""A scripted backend for tests: canned answers, recorded prompts, streamed piece by piece."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any


class FakeBackend:
    """Answers with `answers` in turn (a str, or a dict dumped as JSON), or with
    `answer(prompt, schema)` when a callable is given. Records every call."""

    def __init__(
        self,
        answers: Sequence[str | dict[str, Any]] | Callable[[str, dict[str, Any]], str] = (),
        name: str = "fake",
        key: str = "fake-model",
        multimodal: bool = False,
    ) -> None:
        self._answers = answers if callable(answers) else list(answers)
        self.name = name
        self.key = key
        self.multimodal = multimodal
        self.calls: list[tuple[str, dict[str, Any], tuple[bytes, ...]]] = []

    def complete_json(
        self,
        prompt: str,
        schema: dict[str, Any],
        *,
        max_tokens: int,  # noqa: ARG002 - part of the protocol
        on_text: Callable[[str], None] | None = None,
        images: Sequence[bytes] = (),
    ) -> str:
        from detective.llm.backend import LlmUnavailable

        if images and not self.multimodal:
            raise LlmUnavailable("this fake model is text-only")
        self.calls.append((prompt, schema, tuple(images)))
        if callable(self._answers):
            text = self._answers(prompt, schema)
        else:
            if not self._answers:
                raise AssertionError("FakeBackend ran out of answers")
            answer = self._answers.pop(0)
            text = answer if isinstance(answer, str) else json.dumps(answer)
        for i in range(0, len(text), 8):  # stream like a real model
            if on_text is not None:
                on_text(text[i : i + 8])
        return text
