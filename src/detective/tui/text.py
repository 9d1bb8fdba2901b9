"""User-derived strings on screen: never markup, never terminal escapes."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text

from detective.export.text import fmt_number, strip_control


def safe(value: object) -> str:
    """For markup strings we build ourselves: the user's part escaped."""
    return escape(strip_control(str(value)))


def plain(value: object, style: str = "") -> Text:
    """A Text that shows the value literally (cells of DataTable, Static contents)."""
    if isinstance(value, float):
        return Text(fmt_number(value), style=style)
    return Text(strip_control("" if value is None else str(value)), style=style)


VERDICT_STYLE = {
    "pass": "green",
    "warn": "yellow",
    "fail": "red",
    "not_applicable": "dim",
    "error": "magenta",
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
    "supported": "bold red",
    "inconclusive": "yellow",
    "refuted": "green",
    "open": "dim",
}


def verdict(status: str) -> Text:
    return Text(VERDICT_MARK.get(status, status), style=VERDICT_STYLE.get(status, ""))


def status(value: str, manual: bool = False) -> Text:
    return Text(value + (" ✎" if manual else ""), style=STATUS_STYLE.get(value, ""))
