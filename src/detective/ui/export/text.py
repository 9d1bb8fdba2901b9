"""Escaping text that came from user data (class names, paths, exception messages)."""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Escaped wherever they are: they make markup (emphasis, code, links, HTML, table cells, GFM
# strikethrough) in any position. Others only at the start of a line (headings, list items,
# block quotes) — md_escape output is one line, so only at its start. Prose like "0.39" or
# "train-time" stays as written.
_MD_ANYWHERE = re.compile(r"([\\`*_\[\]<>|~])")
_MD_LINE_START = re.compile(r"^(\s*)(#|[-+](?=\s|$)|\d+[.)](?=\s|$))")


def strip_control(text: str) -> str:
    """Remove terminal escape sequences and control characters (keeps tab and newline)."""
    return _CONTROL.sub("", _ANSI.sub("", text))


def md_escape(text: object) -> str:
    """Plain text for Markdown: no markup, no HTML, no terminal escapes; one line. Escapes only
    what would otherwise become markup."""
    s = strip_control(str(text)).replace("\n", " ")
    s = _MD_ANYWHERE.sub(r"\\\1", s).replace("&", "&amp;")
    return _MD_LINE_START.sub(lambda m: m.group(1) + _escape_marker(m.group(2)), s)


def _escape_marker(marker: str) -> str:
    # "#" / "-" / "+" get a backslash; "12." becomes "12\." so it is not a numbered item.
    return "\\" + marker if not marker[0].isdigit() else marker[:-1] + "\\" + marker[-1]


def md_span(text: object) -> str:
    """Inline code: shown literally (backslashes inside a code span are not escapes), wrapped
    in a backtick run longer than any inside it."""
    s = strip_control(str(text)).replace("\n", " ")
    longest = max((len(r) for r in re.findall("`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


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
