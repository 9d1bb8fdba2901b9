"""Local LLM summaries of failure clusters, grounded in measurements and verified.

- `backend`: the `Backend` protocol (JSON-schema-constrained completion, streamed, cancellable)
  and `LlmUnavailable`.
- `llamacpp`: the llama-cpp-python backend for a GGUF file (`--llm PATH`); imported lazily.
- `fake`: a scripted backend for tests.
- `summary`: the typed summary, its JSON schema and the parser.
- `prompts`: prompts built only from a cluster's measured facts.
- `verify`: checks every checkable claim against the measurements.
- `fallback`: the deterministic summary from the numbers (no model, or it failed).
- `summarize`: the loop over clusters with caching in the session, progress and cancel.
- `vision`: optional per-failure hypotheses from a multimodal GGUF (prompt/parse/verify).

Nothing here imports llama_cpp or torch at module level.
"""
