"""Escaping text that came from user data (class names, paths, exception messages)."""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def strip_control(text: str) -> str:
    """Remove terminal escape sequences and control characters (keeps tab and newline)."""
    return _CONTROL.sub("", _ANSI.sub("", text))


def md_escape(text: object) -> str:
    """Plain text for Markdown: no markup, no HTML, no terminal escapes; one line."""
    s = strip_control(str(text)).replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", s).replace("&", "&amp;")


def md_code(text: object) -> str:
    """Text for an indented/fenced code block: control characters stripped, fences defused."""
    return strip_control(str(text)).replace("```", "ʼʼʼ")


def fmt_number(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000 or abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:.4g}"
