"""Local LLM summaries of failure clusters, grounded in measurements and verified.

- `backend`: the `Backend` protocol (JSON-schema-constrained completion, streamed, cancellable)
  and `LlmUnavailable`.
- `llamacpp`: the llama-cpp-python backend for a GGUF file (`--llm PATH`): it drives a child
  process, so a crash, hang or out-of-memory there becomes a note, never the end of the run.
- `worker`: that child process (`python -m detective.llm.worker`), the only importer of llama_cpp.
- `fake`: a scripted backend for tests.
- `summary`: the typed summary, its JSON schema, the parser, and the loop over clusters with
  caching in the session, progress and cancel.
- `prompts`: prompts built only from a cluster's measured facts.
- `verify`: checks every checkable claim against the measurements.
- `fallback`: the deterministic summary from the numbers (no model, or it failed).
- `vision`: optional per-failure hypotheses from a multimodal GGUF (prompt/parse/verify).

Nothing here imports torch at module level; only `worker` (in its own process) imports llama_cpp.
"""
