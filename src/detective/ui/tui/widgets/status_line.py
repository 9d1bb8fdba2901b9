"""One line under the navigation bar of every session screen: what runs, app-wide."""

from __future__ import annotations

from textual.widgets import Static


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; padding: 0 1; background: $boost; }
    """

    def on_mount(self) -> None:
        self._text = ""
        self._tick()
        self.set_interval(0.3, self._tick)

    def _tick(self) -> None:
        text = getattr(self.app, "status_text", lambda: "")()
        if text != self._text:  # repaint only on change: typing stays fast mid-run
            self._text = text
            self.update(text)
