"""A stand-in for llama_cpp that misbehaves on request, for the worker's failure tests.

Put tests/fake_llama first on PYTHONPATH and set FAKE_LLAMA_MODE; the real worker
(`python -m detective.llm.worker`) then imports this instead of llama-cpp-python:
  ok              loads, streams a valid answer in pieces (slowly if FAKE_LLAMA_DELAY is set)
  not_installed   import fails as if the package were missing
  load_error      the loader raises, as llama.cpp does for a file it rejects
  oom_load        the loader reports a failed allocation
  crash_load      SIGSEGV while loading
  hang_load       never finishes loading
  crash_generate  SIGSEGV after two streamed pieces
  kill_generate   SIGKILL after two streamed pieces (as the out-of-memory killer does)
  hang_generate   never answers after the first piece
"""

import json
import os
import signal
import time

MODE = os.environ.get("FAKE_LLAMA_MODE", "ok")
if MODE == "not_installed":
    raise ImportError("No module named 'llama_cpp' (fake)")

__version__ = "0.0-fake"
ANSWER = json.dumps(
    {
        "title": "3 read as 8",
        "cause": "The model confuses 3 with 8 on blurry images.",
        "fix_kind": "augmentation",
        "fix": "Add blur augmentation.",
        "properties": [{"property": "sharpness", "direction": "lower"}],
        "confusions": [{"true": "3", "pred": "8"}],
    }
)


class LlamaGrammar:
    @classmethod
    def from_json_schema(cls, text, verbose=True):  # noqa: ARG003
        return cls()


class Llama:
    def __init__(self, model_path, **_kwargs):
        if MODE == "load_error":
            raise ValueError(f"Failed to load model from file: {model_path}")
        if MODE == "oom_load":
            raise RuntimeError("ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate")
        if MODE == "crash_load":
            os.kill(os.getpid(), signal.SIGSEGV)
        if MODE == "hang_load":
            time.sleep(3600)
        self.metadata = {}

    def create_completion(self, prompt, **_kwargs):  # noqa: ARG002
        delay = float(os.environ.get("FAKE_LLAMA_DELAY", "0"))
        for n, start in enumerate(range(0, len(ANSWER), 8)):
            if n == 2 and MODE == "crash_generate":
                os.kill(os.getpid(), signal.SIGSEGV)
            if n == 2 and MODE == "kill_generate":
                os.kill(os.getpid(), signal.SIGKILL)
            if n == 1 and MODE == "hang_generate":
                time.sleep(3600)
            time.sleep(delay)
            yield {"choices": [{"text": ANSWER[start : start + 8]}]}
