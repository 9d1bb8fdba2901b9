"""Playbook: every check with its status, the recommended next one and why; run one or all.

Checks run in a child process (`workflows.childrun`: the UI thread keeps the GIL to itself, so
keys stay fast mid-run); a thread worker reads the child's events and forwards each as a message.
The child commits the findings; this screen re-reads the session on its events. It stays installed
while the session is open so a run continues while the user reads findings elsewhere.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState, get_current_worker

from detective.ui.tui.screens.base import SessionScreen
from detective.ui.tui.text import plain, safe, verdict
from detective.ui.tui.widgets.run_panel import IDLE, RunPanel

if TYPE_CHECKING:
    from detective.core.engine import Event
    from detective.ui.browse import CheckRow, Recommendation
    from detective.workflows.childrun import ChildRun


WIDE = 100  # below this many columns the stage column folds away
INTERRUPTED = (
    "[b]! The last run was interrupted[/b] (the process stopped mid-run): finished findings "
    "are saved; a resumes it."
)


class PlaybookScreen(SessionScreen):
    SCREEN = "playbook"
    DEFAULT_CSS = """
    PlaybookScreen #next { padding: 0 1; height: auto; max-height: 3; }
    PlaybookScreen DataTable { height: 1fr; overflow-x: hidden; }
    PlaybookScreen #detail { padding: 0 1; height: auto; max-height: 4; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run_selected", "Run selected"),
        Binding("n", "run_next", "Run next"),
        Binding("a", "run_all", "Run all"),
        Binding("c", "cancel", "Cancel run"),
        Binding("enter", "open_finding", "Finding", show=False),
    ]

    class Engine(Message):
        """One event from the engine's run, forwarded from the worker thread."""

        def __init__(self, event: Event) -> None:
            super().__init__()
            self.event = event

        def can_replace(self, message: Message) -> bool:
            from detective.core.engine import CheckProgress

            # A flood of progress updates coalesces: only the newest one matters.
            return (
                isinstance(message, PlaybookScreen.Engine)
                and isinstance(self.event, CheckProgress)
                and isinstance(message.event, CheckProgress)
                and message.event.check_id == self.event.check_id
            )

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[CheckRow] = []
        self.recommendation: Recommendation | None = None
        self.cancel = threading.Event()
        self.running_check = ""
        self.child: ChildRun | None = None
        self.outcome = ""  # how the last run ended, when the status line should say so
        self._compact: bool | None = None

    def on_resize(self) -> None:
        if self.is_mounted and self.app.current is not None:
            self.refresh_data()

    @property
    def busy(self) -> bool:
        return self.query_one(RunPanel).running

    def body(self) -> ComposeResult:
        yield Static("", id="next")
        yield DataTable(cursor_type="row")
        yield Static("", id="detail")
        yield RunPanel()

    # --- reading the session ----------------------------------------------------------------
    def refresh_data(self) -> None:
        from detective.core.ledger import session_ledger
        from detective.ui.browse import check_board, recommend

        current = self.current
        self.rows = check_board(current.session, current.playbook)
        self.recommendation = recommend(
            self.rows, session_ledger(current.session), current.playbook
        )
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        # Narrow terminals (80×24) fold the stage column away so the summary keeps its room;
        # the stage still shows in the detail line below the table.
        compact = self.app.size.width < WIDE
        if compact != self._compact or not table.columns:
            self._compact = compact
            table.clear(columns=True)
            table.add_columns(*(() if compact else ("stage",)), "check", "status", "summary")
        table.clear()
        previous_stage = ""
        for row in self.rows:
            stage = row.stage.replace("_", " ") if row.stage != previous_stage else ""
            previous_stage = row.stage
            status = (
                plain("▶ running", "bold")
                if row.check_id == self.running_check
                else verdict(row.status)
            )
            cells = (plain(row.check_id), status, plain(row.summary))
            table.add_row(*(cells if compact else (plain(stage, "bold"), *cells)))
        if self.rows:
            table.move_cursor(row=min(max(cursor, 0), len(self.rows) - 1))
        self.query_one("#next", Static).update(self._next_text())
        self._show_detail()

    def _next_text(self) -> str:
        """What to do next — true to the board: never "every check has run" while some wait."""
        from detective.ui.browse import PENDING
        from detective.workflows.childrun import RUN_KEY

        rec = self.recommendation
        pending = [r for r in self.rows if r.status == PENDING]
        if self.busy:
            return f"[b]Running[/b] {safe(self.running_check or 'the case loads')} · c cancels"
        if pending and self.current.session.kv_get(RUN_KEY):
            return INTERRUPTED
        if rec is not None:
            return f"[b]Next:[/b] {safe(rec.check_id)} — {safe(rec.reason)}"
        if pending:
            return (
                f"[b]{len(pending)} check(s) not run[/b]: they wait for checks they need "
                "(r runs the selected one)."
            )
        return "[b]Every check has run.[/b] See the ledger (3) and export a report (6)."

    def status_text(self) -> str:
        """For the status line of every screen: the checks' run, when there is one (or how the
        last one failed)."""
        if not self.busy:
            return self.outcome
        from textual.widgets import ProgressBar

        done = self.query_one(RunPanel).query_one(ProgressBar).percentage or 0.0
        what = safe(self.running_check) if self.running_check else "loading the case"
        return f"[b]▶ checks[/b] {what} {done:4.0%}" + (
            " [b]cancelling[/b]" if self.cancel.is_set() else ""
        )

    def _selected(self) -> CheckRow | None:
        row = self.query_one(DataTable).cursor_row
        return self.rows[row] if self.rows and 0 <= row < len(self.rows) else None

    def _show_detail(self) -> None:
        row = self._selected()
        text = ""
        if row is not None:
            stage = row.stage.replace("_", " ")
            text = f"[b]{safe(row.title)}[/b] [dim]({safe(stage)})[/] · "
            text += safe(row.summary or "not run yet")
        self.query_one("#detail", Static).update(text)

    def on_data_table_row_highlighted(self) -> None:
        self._show_detail()

    def on_data_table_row_selected(self) -> None:
        self.action_open_finding()

    def action_open_finding(self) -> None:
        row = self._selected()
        if row is None:
            return
        if row.finding_id is None:
            self.notify(f"{row.check_id} has not run yet: r runs it.")
            return
        self.app.goto("finding", row.check_id)

    # --- running ----------------------------------------------------------------------------
    def _run(self, only: tuple[str, ...] | None, rerun: bool) -> None:
        if self.query_one(RunPanel).running:
            self.notify("A run is in progress: c cancels it.", severity="warning")
            return
        if self.app.experimenting():
            self.notify("An experiment is running: wait for it or cancel it (5, c).")
            return
        if not self.writable():
            return
        self.cancel = threading.Event()
        self.outcome = ""
        self.query_one(RunPanel).begin("[b]Starting…[/b] loading the case")
        self.run_checks(only, rerun)

    def action_run_selected(self) -> None:
        row = self._selected()
        if row is not None:
            self._run((row.check_id,), rerun=True)

    def action_run_next(self) -> None:
        if self.recommendation is None:
            self.notify("Nothing left to run.")
            return
        self._run((self.recommendation.check_id,), rerun=False)

    def action_run_all(self) -> None:
        self._run(None, rerun=False)

    def action_cancel(self) -> None:
        if self.query_one(RunPanel).running:
            self.stop()
            self.query_one(RunPanel).write("cancelling: the check stops at its next batch")

    def stop(self) -> None:
        """Cancel the run, if any: its process stops at the next step (killed if it hangs)."""
        self.cancel.set()
        if self.child is not None:
            self.child.cancel()

    @work(thread=True, exclusive=True, group="run", exit_on_error=False, name="running checks")
    def run_checks(self, only: tuple[str, ...] | None, rerun: bool) -> None:
        from detective.workflows.childrun import ChildRun

        worker = get_current_worker()
        child = self.child = ChildRun(self.current.path, only=only, rerun=rerun)
        if self.cancel.is_set():  # cancelled while the process was starting
            child.cancel()
        for event in child.events():  # blocks on the pipe: the GIL stays with the UI
            self.post_message(self.Engine(event))
            if worker.is_cancelled:
                child.cancel()

    def on_playbook_screen_engine(self, message: Engine) -> None:
        from detective.core.engine import (
            CheckFinished,
            CheckLog,
            CheckProgress,
            CheckSkipped,
            CheckStarted,
            HookWaiting,
            RunFinished,
            RunPlanned,
            RunStatus,
        )
        from detective.core.findings import Verdict

        event, panel = message.event, self.query_one(RunPanel)
        eta = getattr(self, "_eta", None)
        if isinstance(event, RunPlanned):
            from detective.core.budget import Eta

            self._eta = Eta(event.plan)
            panel.write(f"plan: {event.plan.describe()}")
            if event.plan.shortened:
                shortened = "; ".join(s.describe() for s in event.plan.shortened)
                panel.write(f"shortened to fit the budget: {shortened}")
        elif isinstance(event, CheckStarted):
            if eta is not None:
                eta.started(event.check_id)
            self.running_check = event.check_id
            panel.start(event.title, event.index, event.total)
            panel.write(f"{event.check_id}: started")
            self.refresh_data()
        elif isinstance(event, CheckProgress):
            if eta is not None:
                from detective.core.budget import duration

                eta.progressed(event.check_id, event.fraction)
                left = f"≈ {duration(eta.seconds_left())} left"
                panel.progress(event.fraction, f"{event.message} · {left}".lstrip(" ·"))
            else:
                panel.progress(event.fraction, event.message)
        elif isinstance(event, CheckLog):
            panel.write(f"{event.check_id}: {event.message}")
        elif isinstance(event, HookWaiting):
            panel.write(f"waiting for your {event.hook}() hook… (c cancels)")
        elif isinstance(event, CheckSkipped):
            panel.write(f"{event.check_id}: skipped ({event.reason})")
        elif isinstance(event, CheckFinished):
            self.running_check = ""
            if eta is not None:
                eta.finished(event.check_id)
            f = event.finding
            panel.write(f"{f.check_id}: {f.verdict.value} ({f.duration_s:.1f}s) {f.summary}")
            self.refresh_data()
            if f.verdict is Verdict.ERROR:
                self.app.show_error(f"The check {f.check_id} crashed", f.summary, f.error)
        elif isinstance(event, RunFinished):
            self.running_check = ""
            self.child = None
            if event.status is RunStatus.COMPLETED:
                panel.progress(1.0, "")  # "Done." never sits beside a bar at 84 %
            text = {
                RunStatus.COMPLETED: "[b]✓ Done.[/b]"
                + (f" {event.errors} check(s) crashed." if event.errors else ""),
                RunStatus.INTERRUPTED: "[b]Stopped.[/b] Finished findings are saved.",
                RunStatus.FAILED: "[b red]The run stopped.[/]",
            }[event.status]
            panel.finish(f"{text} [dim]{safe(event.message)}[/]" if event.message else text)
            if event.status is RunStatus.FAILED:
                self.outcome = f"[b]✗ checks stopped:[/b] {safe(event.message)}"
            self.refresh_data()
            if event.status is RunStatus.FAILED:
                self.app.show_error("The run stopped", event.message)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        super().on_worker_state_changed(event)
        panel = self.query_one(RunPanel)
        if event.worker.group == "run" and event.state is WorkerState.ERROR:
            panel.finish("[b red]The run could not start.[/] " + IDLE)
            self.running_check = ""
            self.refresh_data()
        elif event.worker.group == "run" and event.state is WorkerState.CANCELLED:
            panel.finish("[b]Cancelled.[/b]")

    def commands(self) -> Iterator[SystemCommand]:
        yield SystemCommand(
            "Run the selected check", "Run it again if done", self.action_run_selected
        )
        yield SystemCommand(
            "Run the recommended check", "The next check and why", self.action_run_next
        )
        yield SystemCommand("Run every pending check", "The whole playbook", self.action_run_all)
        yield SystemCommand("Cancel the run", "Stop at the next batch", self.action_cancel)
        yield from super().commands()
