"""Experiments: the log of one-change experiments with their metric deltas; start a new one
when the experiment runner (`detective.experiments`) is part of this installation."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from detective.tui.screens.base import SessionScreen
from detective.tui.screens.dialogs import Prompt
from detective.tui.text import plain, safe
from detective.tui.widgets.run_panel import RunPanel

if TYPE_CHECKING:
    from detective.session import Experiment

EMPTY = "No experiments yet. An experiment changes one thing and measures the metric again."


def runner_available() -> bool:
    return importlib.util.find_spec("detective.experiments") is not None


class ExperimentsScreen(SessionScreen):
    SCREEN = "experiments"
    DEFAULT_CSS = """
    ExperimentsScreen DataTable { height: 1fr; }
    ExperimentsScreen #about { padding: 0 1; height: auto; max-height: 4; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "New experiment"),
        Binding("c", "cancel", "Cancel"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cancel = threading.Event()

    def body(self) -> ComposeResult:
        yield Static("", id="about")
        table: DataTable[object] = DataTable(cursor_type="row", zebra_stripes=True)
        table.add_columns("#", "experiment", "metric", "before", "after", "Δ", "verdict")
        yield table
        yield RunPanel(idle="[dim]n starts an experiment: one change, trained side by side.[/]")

    def refresh_data(self) -> None:
        experiments = self.current.session.experiments()
        table = self.query_one(DataTable)
        table.clear()
        for e in experiments:
            spread = f" ±{e.after_spread:.3f}" if e.after_spread is not None else ""
            verdict = e.verdict + (" (confounded)" if e.confounded else "")
            delta_style = "green" if e.delta > 0 else ("red" if e.delta < 0 else "")
            table.add_row(
                plain(e.id),
                plain(e.name),
                plain(e.metric),
                plain(f"{e.before:.3f}"),
                plain(f"{e.after:.3f}{spread}"),
                plain(f"{e.delta:+.3f}", delta_style),
                plain(verdict),
            )
        about = "" if experiments else EMPTY + " "
        about += (
            "n starts one."
            if runner_available()
            else "The experiment runner is not part of this installation, so the log is read-only."
        )
        self.query_one("#about", Static).update(plain(about))

    def action_new(self) -> None:
        if not runner_available():
            self.notify("The experiment runner (detective.experiments) is not installed.")
            return
        if self.query_one(RunPanel).running or self._playbook_running():
            self.notify("Something is running: wait for it, or cancel it (c).", severity="warning")
            return

        def asked(values: tuple[str, ...] | None) -> None:
            if not values:
                return
            from detective.experiments import ExperimentError, parse_change

            try:
                change = parse_change(values[0])
            except (ValueError, ExperimentError) as e:
                self.app.show_error("Not a change detective can make", str(e))
                return
            self.cancel = threading.Event()
            self.query_one(RunPanel).begin("[b]Starting…[/b] loading the case")
            self.run_one(change.label, values[1] or None)

        self.app.push_screen(
            Prompt(
                "One change, measured against the recipe as it is",
                ("Change, e.g. train.lr=1e-3, model.dropout=0.5, aug.shift=1", "Name (optional)"),
            ),
            asked,
        )

    def _playbook_running(self) -> bool:
        if not self.app.is_screen_installed("playbook"):
            return False
        return self.app.get_screen("playbook").query_one(RunPanel).running

    class Update(Message):
        """Progress of the experiment, from the worker thread."""

        def __init__(self, fraction: float, message: str) -> None:
            super().__init__()
            self.fraction, self.message = fraction, message

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ExperimentsScreen.Update)

    class Log(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    @work(thread=True, exclusive=True, group="experiment", exit_on_error=False, name="experiment")
    def run_one(self, change: str, name: str | None) -> None:
        from detective.experiments import run_experiment
        from detective.progress import Cancelled, Progress

        prep = self.current.prepared()  # loads the case: torch stays off the UI thread
        progress = Progress(
            lambda u: self.post_message(self.Update(u.fraction, u.message)),
            self.cancel,
            lambda text: self.post_message(self.Log(text)),
        )
        panel = self.query_one(RunPanel)  # found once; its methods then run on the UI thread
        self.app.call_from_thread(panel.start, f"experiment {change}", 0, 1)
        try:
            run = run_experiment(prep.ctx, [change], name=name, progress=progress)
        except Cancelled:
            self.app.call_from_thread(panel.finish, "[b]Cancelled.[/b] Nothing recorded.")
            return
        e = run.experiment
        self.current.session.add_experiment(e)
        self.app.call_from_thread(self._done, e)

    def _done(self, e: Experiment) -> None:
        self.query_one(RunPanel).finish(
            f"[b]Done.[/b] {safe(e.name)}: {safe(e.metric)} {e.before:.3f} → {e.after:.3f} "
            f"({safe(e.verdict)})"
        )
        self.refresh_data()

    def on_experiments_screen_update(self, message: Update) -> None:
        self.query_one(RunPanel).progress(message.fraction, message.message)

    def on_experiments_screen_log(self, message: Log) -> None:
        self.query_one(RunPanel).write(message.text)

    def action_cancel(self) -> None:
        if self.query_one(RunPanel).running:
            self.cancel.set()
            self.query_one(RunPanel).write("cancelling: the experiment stops at its next step")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        super().on_worker_state_changed(event)
        if event.state is WorkerState.ERROR:
            self.query_one(RunPanel).finish("[b red]The experiment could not run.[/]")

    def on_unmount(self) -> None:
        self.cancel.set()  # leaving the screen stops the experiment; nothing half-recorded

    def commands(self) -> Iterator[SystemCommand]:
        yield SystemCommand("New experiment", "Change one thing, measure again", self.action_new)
        yield from super().commands()
