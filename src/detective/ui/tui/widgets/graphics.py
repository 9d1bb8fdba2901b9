"""Real pixels where the terminal can show them (kitty graphics protocol or sixel, through
textual-image), half-blocks (rich-pixels) everywhere else.

textual-image finds out what the terminal supports by querying it, which is only possible before
Textual takes the terminal over, and costs a round trip. So it is asked only when the environment
names a terminal known to draw graphics; any other terminal (tmux, plain SSH, headless tests)
keeps half-blocks and a fast first frame.
"""

from __future__ import annotations

import os
from typing import Any

# Terminals that draw kitty-protocol or sixel images, as they announce themselves.
_PROGRAMS = {"wezterm", "iterm.app", "ghostty", "kitty", "konsole", "mlterm", "foot"}
_TERMS = ("kitty", "foot", "mlterm", "wezterm", "ghostty")

_widget: Any = None  # textual_image's widget class, once prepared


def graphics_terminal(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    if env.get("TMUX") or env.get("NO_GRAPHICS"):
        return False  # tmux passes neither protocol through by default
    program = env.get("TERM_PROGRAM", "").lower()
    term = env.get("TERM", "").lower()
    return (
        bool(env.get("KITTY_WINDOW_ID")) or program in _PROGRAMS or any(t in term for t in _TERMS)
    )


def prepare() -> None:
    """Call before the app starts: ask the terminal, if it is one that may draw graphics."""
    global _widget
    if not graphics_terminal():
        return
    try:
        from textual_image.renderable import Image as Renderable
        from textual_image.renderable.halfcell import Image as Halfcell
        from textual_image.renderable.unicode import Image as Unicode
        from textual_image.widget import Image
    except Exception:  # not installed, or the terminal did not answer: half-blocks
        return
    if Renderable not in (Halfcell, Unicode):  # it found sixel or the kitty protocol
        _widget = Image


def image_widget() -> Any:
    """textual-image's widget class when the terminal draws real pixels, else None."""
    return _widget
