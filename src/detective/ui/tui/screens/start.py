"""Start: a new investigation, a recent session to resume, or the demo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from detective.ui.tui.screens.base import DetectiveScreen
from detective.ui.tui.text import plain
from detective.ui.tui.widgets.footer import KeyFooter

if TYPE_CHECKING:
    from detective.ui.browse import SessionSummary

LIST_AFTER_S = 0.15  # the recent sessions are listed this long after the screen is shown
INTRO = (
    "[b]detective[/b] · why does my image classifier underperform? It measures, keeps a "
    "hypothesis ledger, and writes a findings report."
)


class StartScreen(DetectiveScreen):
    DEFAULT_CSS = """
    StartScreen #intro { padding: 1 1 0 1; }
    StartScreen #hint { padding: 0 1 1 1; color: $text-muted; }
    StartScreen DataTable { height: 1fr; overflow-x: hidden; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "New investigation"),
        Binding("d", "demo", "Open the demo"),
        Binding("enter", "resume", "Resume", show=False),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("escape", "back", "Back to the session", show=False),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[SessionSummary] = []

    def compose(self) -> ComposeResult:
        yield Static(INTRO, id="intro")
        yield Static("Recent sessions (enter resumes):", id="hint")
        table: DataTable[object] = DataTable(cursor_type="row", zebra_stripes=True)
        table.add_columns("session", "symptom", "last step", "top hypothesis")
        yield table
        yield KeyFooter()

    def on_screen_resume(self) -> None:
        # Once the first frame is out (the footer paints a refresh later): the listing's worker
        # imports the session store, and its thread would take the GIL from that paint.
        self.set_timer(LIST_AFTER_S, self.action_refresh)

    def action_refresh(self) -> None:
        current = self.app.current.path if self.app.current is not None else None
        self.load_sessions(self.app.sessions_root, current)

    def action_back(self) -> None:
        """esc: back to the open session (also one opened by a path outside the root)."""
        if self.app.current is not None:
            self.app.goto(self.app.current.landing()[0], self.app.current.landing()[1])

    @work(thread=True, exclusive=True, group="list", exit_on_error=False, name="listing sessions")
    def load_sessions(self, root: Path, current: Path | None = None) -> None:
        from detective.ui.browse import recent_sessions, summarize

        found = recent_sessions(root)
        if current is not None and all(s.path.resolve() != current.resolve() for s in found):
            found.insert(0, summarize(current))  # the open session is always listed
        self.app.call_from_thread(self._show, found)

    def _show(self, sessions: list[SessionSummary]) -> None:
        self.sessions = sessions
        table = self.query_one(DataTable)
        table.clear()
        for s in sessions:
            if s.problem:
                table.add_row(plain(s.name), plain("unreadable", "red"), plain(s.problem), "")
                continue
            table.add_row(
                plain(s.name, "bold"),
                plain((s.symptom or "—").replace("_", " ")),
                plain(s.last_step),
                plain(f"{s.top_status}: {s.top_hypothesis}" if s.top_hypothesis else "—"),
            )
        hint = (
            "Recent sessions (enter resumes):"
            if sessions
            else (
                f"No sessions in {self.app.sessions_root}/ yet: "
                "press n to start one, d for the demo."
            )
        )
        self.query_one("#hint", Static).update(plain(hint))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_resume()

    def action_resume(self) -> None:
        table = self.query_one(DataTable)
        if self.sessions and 0 <= table.cursor_row < len(self.sessions):
            self.app.open_session(self.sessions[table.cursor_row].path, land=True)

    def action_new(self) -> None:
        from detective.ui.tui.screens import make_screen

        self.app.push_screen(make_screen("intake"))

    def action_demo(self) -> None:
        self.notify("Opening the demo (loading the case)…")
        self.open_demo(self.app.sessions_root / "demo")

    @work(thread=True, exclusive=True, group="open", exit_on_error=False, name="opening the demo")
    def open_demo(self, target: Path) -> None:
        if not (target / "session.sqlite").exists():
            from detective.casekit.demo import DEMO_CASE, DEMO_SYMPTOM
            from detective.workflows.investigation import IntakeForm, start

            form = IntakeForm(str(DEMO_CASE), str(target), DEMO_SYMPTOM)
            start(form).session.close()
        self.app.call_from_thread(self.app.open_session, target)

    def commands(self) -> Iterator[SystemCommand]:
        yield SystemCommand("New investigation", "Describe a case and start", self.action_new)
        yield SystemCommand(
            "Open the demo", "The digits demo with a planted flaw", self.action_demo
        )
        yield SystemCommand(
            "Resume the selected session", "Open it where you left", self.action_resume
        )
