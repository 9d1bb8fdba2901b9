"""Shared test helpers: write case files, build contexts, run one check."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from detective.core.case import load_case
from detective.core.context import RunContext, RunOptions
from detective.core.findings import Finding
from detective.core.progress import Progress

CASES = Path(__file__).parent / "cases"


def write_case(directory: Path, source: str, name: str = "case.py") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def context_for(case_path: Path | str, tmp_path: Path, **options: Any) -> RunContext:
    options.setdefault("device", "cpu")
    return RunContext(
        load_case(case_path), RunOptions(**options), tmp_path / "artifacts", tmp_path / "cache"
    )


def run_check(
    check_id: str,
    case_path: Path | str,
    tmp_path: Path,
    thresholds: Any = None,
    *,
    settings: Any = None,
    kv: Any = None,
    **options: Any,
) -> tuple[Any, Finding]:
    """Run a registered check through the engine's single-check path (needs, errors, timing);
    `kv`: a key/value store to attach as the engine attaches the session's."""
    from detective.core.engine import run_one
    from detective.core.registry import get_check

    ctx = context_for(case_path, tmp_path, **options)
    ctx.kv = kv
    cls = get_check(check_id)
    if thresholds is not None or settings is not None:

        class _Configured(cls):  # type: ignore[misc, valid-type]
            def __init__(self) -> None:
                super().__init__(thresholds, settings)

        return run_one(_Configured, ctx, Progress())
    return run_one(cls, ctx, Progress())
