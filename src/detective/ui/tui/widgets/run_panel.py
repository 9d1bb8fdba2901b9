"""The running check: what, how far, for how long, and its live log."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Log, ProgressBar, Static

from detective.ui.export.text import strip_control
from detective.ui.tui.text import safe

IDLE = "[dim]Idle. r runs the selected check, n the recommended one, a every pending one.[/]"


class RunPanel(Widget):
    DEFAULT_CSS = """
    RunPanel { height: auto; border-top: solid $panel; }
    RunPanel #run-label { height: 1; }
    RunPanel ProgressBar { height: 1; }
    RunPanel ProgressBar Bar { width: 1fr; }
    RunPanel Log { height: 4; background: $surface; overflow-x: hidden; }
    """

    running: reactive[bool] = reactive(False)
    label: reactive[str] = reactive("")

    def __init__(self, idle: str = IDLE) -> None:
        super().__init__()
        self.idle = idle
        self._started = 0.0
        self._head = ""
        self._message = ""

    def compose(self) -> ComposeResult:
        yield Static(self.idle, id="run-label")
        yield ProgressBar(total=1.0, show_eta=False, id="run-bar")
        yield Log(max_lines=500, id="run-log")

    def on_mount(self) -> None:
        self.set_interval(0.25, self._tick)

    def watch_label(self, value: str) -> None:
        if value:
            self.query_one("#run-label", Static).update(value)

    def _tick(self) -> None:
        if self.running:
            elapsed = time.monotonic() - self._started
            self.label = f"{self._head} [dim]{elapsed:5.1f}s[/]{self._message}"

    @property
    def head(self) -> str:
        return self._head

    def begin(self, text: str, started: float | None = None) -> None:
        """The run was asked for (at `started`, monotonic); nothing has reported yet."""
        self.running = True
        self._started = time.monotonic() if started is None else started
        self._head, self._message = text, ""
        self._tick()

    def start(self, title: str, index: int, total: int) -> None:
        self.running = True
        self._started = time.monotonic()
        self._head = f"[b]▶ {index + 1}/{total}[/b] {safe(title)}"
        self._message = ""
        self.query_one(ProgressBar).update(progress=0.0)
        self._tick()

    def progress(self, fraction: float, message: str) -> None:
        self.query_one(ProgressBar).update(progress=fraction)
        if message:
            self._message = f" — {safe(message)}"

    def write(self, line: str) -> None:
        self.query_one(Log).write_line(strip_control(line))

    def finish(self, text: str) -> None:
        self.running = False
        self.label = text
