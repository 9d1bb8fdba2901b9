"""What every screen shares: the one worker-error handler, and (for a session's screens) the
navigation bar, number keys between screens, and remembering where the user was."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from detective.ui.tui.text import safe
from detective.ui.tui.widgets.footer import KeyFooter

if TYPE_CHECKING:
    from detective.ui.tui.app import DetectiveApp
    from detective.ui.tui.current import OpenSession

# (screen name, key, label) in the order of an investigation.
NAV: tuple[tuple[str, str, str], ...] = (
    ("intake", "1", "Intake"),
    ("playbook", "2", "Playbook"),
    ("ledger", "3", "Ledger"),
    ("failures", "4", "Failures"),
    ("experiments", "5", "Experiments"),
    ("export", "6", "Export"),
)


class DetectiveScreen(Screen[None]):
    """Base of every full screen: a worker that raised shows a dialog, never a crash."""

    app: DetectiveApp  # type: ignore[assignment]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.app.show_exception(f"{event.worker.name} failed", event.worker.error)

    def commands(self) -> Iterator[SystemCommand]:
        """Actions this screen offers in the command palette."""
        yield from ()


class NavBar(Static):
    """One line: the session's name and the numbered screens, the current one highlighted."""

    DEFAULT_CSS = """
    NavBar { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, session_name: str, current: str) -> None:
        short = (
            session_name if current == "new" or len(session_name) <= 14 else session_name[:13] + "…"
        )
        parts = [f"[b]{safe(short)}[/b] "]
        for name, key, label in NAV if current != "new" else ():
            if name == current:
                parts.append(f"[reverse] {key} {label} [/reverse]")
            else:
                parts.append(f" [b]{key}[/b] {label} ")
        super().__init__("".join(parts))


class SessionScreen(DetectiveScreen):
    """A screen about the open session. Subclasses set SCREEN and compose `body()`."""

    SCREEN: ClassVar[str] = ""
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(key, f"app.goto('{name}')", label, show=False) for name, key, label in NAV),
        Binding("escape", "app.goto('start')", "Sessions", show=False),
    ]

    @property
    def current(self) -> OpenSession:
        assert self.app.current is not None
        return self.app.current

    def compose(self) -> ComposeResult:
        if self.app.current is None:
            yield NavBar("new investigation · esc goes back", "new")
        else:
            yield NavBar(self.current.name, self.SCREEN)
        from detective.ui.tui.widgets.status_line import StatusLine

        yield StatusLine()
        yield from self.body()
        yield KeyFooter()

    def body(self) -> ComposeResult:
        yield from ()

    # Screens that show more than the session's store (files, the App's experiment) re-read on
    # every resume; the others only when the session's revision moved.
    ALWAYS_REFRESH: ClassVar[bool] = False
    _seen: tuple[object, ...] | None = None  # the session's revision this screen last showed

    def on_screen_resume(self) -> None:
        if self.app.current is None:
            self.refresh_data()
            return
        self.current.remember(self.SCREEN)
        # Shown again: re-read only if the session changed meanwhile (a screen switch stays a
        # repaint; a run's events refresh the playbook themselves).
        revision = self.current.session.revision()
        if revision != self._seen or self.ALWAYS_REFRESH:
            self._seen = revision
            self.refresh_data()

    def refresh_data(self) -> None:
        """Re-read what this screen shows from the session (cheap, on the UI thread)."""

    def writable(self) -> bool:
        """May this action write to the session? A read-only one says why not."""
        if self.app.current is None or not self.current.readonly:
            return True
        self.notify(
            f"Viewing only: {self.current.readonly_reason}", severity="warning", timeout=8
        )
        return False

    def commands(self) -> Iterator[SystemCommand]:
        for name, key, label in NAV:
            if name != self.SCREEN:
                yield SystemCommand(
                    f"Go to {label}",
                    f"Switch to the {label} screen (key {key})",
                    lambda n=name: self.app.goto(n),
                )
