"""User-derived strings on screen: never markup, never terminal escapes."""

from __future__ import annotations

import os

from rich.markup import escape
from rich.text import Text


def strip_control(text: str) -> str:
    # Imported on first use: `detective.ui.export` pulls in the report module, which the first
    # frame does not need.
    from detective.ui.export.text import strip_control as strip

    return strip(text)


def safe(value: object) -> str:
    """For markup strings we build ourselves: the user's part escaped."""
    return escape(strip_control(str(value)))


def plain(value: object, style: str = "") -> Text:
    """A Text that shows the value literally (cells of DataTable, Static contents)."""
    if isinstance(value, float):
        from detective.ui.export.text import fmt_number

        return Text(fmt_number(value), style=style)
    return Text(strip_control("" if value is None else str(value)), style=style)


# Glyph and weight carry the meaning; colour only adds to it. Under NO_COLOR, Textual turns
# colours into grey levels (red becomes a dark grey): there a failure is bold reverse video in
# the terminal's own colours, never a grey on grey.
MONOCHROME = bool(os.environ.get("NO_COLOR"))
VERDICT_STYLE = {
    "pass": "" if MONOCHROME else "green",
    "warn": "bold" if MONOCHROME else "bold yellow",
    "fail": "bold reverse" if MONOCHROME else "bold red",
    "not_applicable": "dim",
    "error": "bold reverse" if MONOCHROME else "bold magenta",
    "pending": "dim",
}
VERDICT_MARK = {
    "pass": "✓ pass",
    "warn": "! warn",
    "fail": "✗ fail",
    "not_applicable": "– n/a",
    "error": "✗ error",
    "pending": "· pending",
}
STATUS_STYLE = {
    "supported": "bold reverse" if MONOCHROME else "bold red",
    "inconclusive": "yellow",
    "refuted": "green",
    "open": "dim",
}


def verdict(status: str) -> Text:
    return Text(VERDICT_MARK.get(status, status), style=VERDICT_STYLE.get(status, ""))


def status(value: str, manual: bool = False) -> Text:
    return Text(value + (" ✎" if manual else ""), style=STATUS_STYLE.get(value, ""))
