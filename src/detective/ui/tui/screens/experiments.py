"""Experiments: the log of one-change experiments with their metric deltas; start a new one
when the experiment runner (`detective.workflows.experiments`) is part of this installation.

The run itself belongs to the App (`detective.ui.tui.runs`): this screen starts it, shows it while
it is shown, and catches up on its log when it is shown again."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Log, Static

from detective.ui.tui.runs import Ended
from detective.ui.tui.screens.base import SessionScreen
from detective.ui.tui.screens.dialogs import Prompt
from detective.ui.tui.text import plain, safe
from detective.ui.tui.widgets.run_panel import RunPanel

if TYPE_CHECKING:
    from detective.core.session import Experiment
    from detective.ui.tui.runs import ExperimentRun

EMPTY = "No experiments yet. An experiment changes one thing and measures the metric again."


def runner_available() -> bool:
    return importlib.util.find_spec("detective.workflows.experiments") is not None


class ExperimentsScreen(SessionScreen):
    SCREEN = "experiments"
    ALWAYS_REFRESH = True  # the App's experiment runs on whichever screen is shown
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
        self._shown_log = 0  # lines of the App's experiment log already written here

    def body(self) -> ComposeResult:
        yield Static("", id="about")
        table: DataTable[object] = DataTable(cursor_type="row", zebra_stripes=True)
        table.add_columns("#", "experiment", "metric", "before", "after", "Δ", "verdict")
        yield table
        yield RunPanel(idle="[dim]n starts an experiment: one change, trained side by side.[/]")

    def refresh_data(self) -> None:
        self.refresh_table()
        self._shown_log = 0  # replay the App's experiment log into this (new) panel
        self.query_one("#run-log", Log).clear()
        self.experiment_changed()

    def experiment_changed(self) -> None:
        """Show the App's experiment (it runs whichever screen is shown)."""
        run, panel = self.app.experiment, self.query_one(RunPanel)
        if run is None:
            return
        for line in run.log[self._shown_log :]:
            panel.write(line)
        self._shown_log = len(run.log)
        head = f"[b]▶ experiment[/b] {safe(run.change)}"
        if run.running:
            if not panel.running or panel.head != head:
                panel.begin(head, started=run.started)
            panel.progress(run.fraction, run.message)
        elif panel.running or not panel.label:
            panel.finish(ended_text(run))
            self.refresh_table()

    def refresh_table(self) -> None:
        experiments = self.current.session.experiments()
        table = self.query_one(DataTable)
        table.clear()
        for e in experiments:
            table.add_row(*row(e))
        about = "" if experiments else EMPTY + " "
        about += (
            "n starts one."
            if runner_available()
            else "The experiment runner is not part of this installation, so the log is read-only."
        )
        self.query_one("#about", Static).update(plain(about))

    def action_new(self) -> None:
        if not runner_available():
            self.notify("The experiment runner (detective.workflows.experiments) is not installed.")
            return
        if self.app.experimenting() or self.app.running():
            self.notify("Something is running: wait for it, or cancel it (c).", severity="warning")
            return
        if not self.writable():
            return

        def asked(values: tuple[str, ...] | None) -> None:
            if not values:
                return
            from detective.workflows.experiments import ExperimentError, parse_change

            try:
                change = parse_change(values[0])
            except (ValueError, ExperimentError) as e:
                self.app.show_error("Not a change detective can make", str(e))
                return
            self._shown_log = 0
            self.query_one("#run-log", Log).clear()
            self.app.start_experiment(change.label, values[1] or None)

        self.app.push_screen(
            Prompt(
                "One change, measured against the recipe as it is",
                ("Change, e.g. train.lr=1e-3, model.dropout=0.5, aug.shift=1", "Name (optional)"),
            ),
            asked,
        )

    def action_cancel(self) -> None:
        if not self.app.cancel_experiment():
            self.notify("No experiment is running.")

    def commands(self) -> Iterator[SystemCommand]:
        yield SystemCommand("New experiment", "Change one thing, measure again", self.action_new)
        yield SystemCommand(
            "Cancel the experiment", "It is recorded as cancelled", self.action_cancel
        )
        yield from super().commands()


def _num(value: float, fmt: str = ".3f") -> str:
    return "—" if math.isnan(value) else format(value, fmt)


def row(e: Experiment) -> tuple[object, ...]:
    spread = f" ±{e.after_spread:.3f}" if e.after_spread is not None else ""
    verdict = e.verdict + (" (confounded)" if e.confounded else "")
    delta_style = (
        "" if math.isnan(e.delta) else ("green" if e.delta > 0 else "red" if e.delta < 0 else "")
    )
    return (
        plain(e.id),
        plain(e.name),
        plain(e.metric or "—"),
        plain(_num(e.before)),
        plain(_num(e.after) + spread),
        plain(_num(e.delta, "+.3f"), delta_style),
        plain(verdict, "bold" if e.verdict in ("cancelled", "failed") else ""),
    )


def ended_text(run: ExperimentRun) -> str:
    e = run.experiment
    if run.ended is Ended.FINISHED and e is not None:
        return (
            f"[b]Done.[/b] {safe(e.name)}: {safe(e.metric)} {e.before:.3f} → {e.after:.3f} "
            f"({safe(e.verdict)})"
        )
    if run.ended is Ended.CANCELLED:
        return "[b]Cancelled.[/b] Recorded as cancelled in the log."
    return "[b]✗ The experiment failed.[/b] Recorded as failed in the log."
