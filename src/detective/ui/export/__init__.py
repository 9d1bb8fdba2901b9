"""Renderers of a Report: Markdown and HTML for people, JSON for machines."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from detective.core.report import Report


class Format(StrEnum):
    MD = "md"
    HTML = "html"
    JSON = "json"


def render(report: Report, fmt: Format, artifacts_dir: Path, output: Path | None = None) -> str:
    """Render `report`; `output` is where it will be written (for relative image links)."""
    if fmt is Format.MD:
        import os

        from detective.ui.export.markdown import render_markdown

        base = output.resolve().parent if output else artifacts_dir.resolve().parent
        prefix = os.path.relpath(artifacts_dir.resolve(), base).replace(os.sep, "/") + "/"
        return render_markdown(report, prefix)
    if fmt is Format.HTML:
        from detective.ui.export.html import render_html

        return render_html(report, artifacts_dir)
    from detective.ui.export.json import render_json

    return render_json(report)
