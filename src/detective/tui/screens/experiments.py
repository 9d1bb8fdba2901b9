"""Experiments: the log of one-change experiments with their metric deltas; start a new one
when the experiment runner (`detective.experiments`) is part of this installation."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import ClassVar

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from detective.tui.screens.base import SessionScreen
from detective.tui.text import plain

EMPTY = "No experiments yet. An experiment changes one thing and measures the metric again."


def runner_available() -> bool:
    return importlib.util.find_spec("detective.experiments") is not None


class ExperimentsScreen(SessionScreen):
    SCREEN = "experiments"
    DEFAULT_CSS = """
    ExperimentsScreen DataTable { height: 1fr; }
    ExperimentsScreen #about { padding: 0 1; height: auto; max-height: 4; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("n", "new", "New experiment")]

    def body(self) -> ComposeResult:
        yield Static("", id="about")
        table: DataTable[object] = DataTable(cursor_type="row", zebra_stripes=True)
        table.add_columns("#", "experiment", "metric", "before", "after", "Δ", "verdict")
        yield table

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
        self.notify("Start experiments from the capacity checks in the playbook (2).")

    def commands(self) -> Iterator[SystemCommand]:
        yield SystemCommand("New experiment", "Change one thing, measure again", self.action_new)
        yield from super().commands()
