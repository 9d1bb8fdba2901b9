"""Textual's Footer, rebuilt only when the keys it shows change.

Textual's Footer recomposes all its key widgets whenever the screen's bindings are updated —
on every screen switch and focus change, even when the same keys are shown. Each recompose mounts
and styles a widget per key: most of what a screen switch cost (see benchmarks/tui.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Footer

if TYPE_CHECKING:
    from textual.screen import Screen

Shown = tuple[tuple[str, str, str, bool], ...]


class KeyFooter(Footer):
    _shown: Shown | None = None

    def bindings_changed(self, screen: Screen) -> None:
        shown = _shown(screen)
        if shown == self._shown and self._bindings_ready:
            return  # the same keys: nothing to rebuild
        self._shown = shown
        super().bindings_changed(screen)


def _shown(screen: Screen) -> Shown:
    return tuple(
        (binding.key, binding.action, binding.description, enabled)
        for (_, binding, enabled, _tooltip) in screen.active_bindings.values()
        if binding.show
    )
