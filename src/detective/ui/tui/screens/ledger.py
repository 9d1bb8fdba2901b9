"""Ledger: hypotheses ranked with status and evidence; add your own, set status, attach notes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from detective.core.session import HypothesisStatus
from detective.ui.tui.screens.base import SessionScreen
from detective.ui.tui.screens.dialogs import Choice, Prompt
from detective.ui.tui.text import plain, safe, status

if TYPE_CHECKING:
    from detective.core.ledger import LedgerEntry

CLEAR = "clear"
CURSOR_KEY = "ui.ledger.hypothesis"  # Session.kv: the hypothesis the cursor was on
# As wide as the widest status set by hand ("inconclusive ✎") from the start: an auto-width
# column widens only once the table is idle after the rows are added, and a frame painted in
# between stays truncated (Textual's DataTable caches painted lines whatever the column widths).
STATUS_WIDTH = max(status(s.value, manual=True).cell_len for s in HypothesisStatus)


class LedgerScreen(SessionScreen):
    SCREEN = "ledger"
    DEFAULT_CSS = """
    LedgerScreen DataTable { height: 1fr; overflow-x: hidden; }
    LedgerScreen #entry { height: 8; border-top: solid $panel; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add hypothesis"),
        Binding("s", "set_status", "Set status"),
        Binding("n", "note", "Note"),
        Binding("enter", "evidence", "Evidence", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[LedgerEntry] = []

    def body(self) -> ComposeResult:
        table: DataTable[object] = DataTable(cursor_type="row")
        table.add_column("#")
        table.add_column("status", width=STATUS_WIDTH)
        table.add_columns("score", "hypothesis", "evidence")
        yield table
        with VerticalScroll(id="entry"):
            yield Static("", id="entry-text")

    def refresh_data(self) -> None:
        from detective.core.ledger import session_ledger

        # The cursor stays on the same hypothesis (by id) when rows move after `s`, and after
        # a screen switch (the id is kept in the session).
        chosen = self.selected()
        keep = chosen.hypothesis_id if chosen else self.current.session.kv_get(CURSOR_KEY)
        self.entries = session_ledger(self.current.session)
        table = self.query_one(DataTable)
        cursor = next(
            (i for i, h in enumerate(self.entries) if h.hypothesis_id == keep), table.cursor_row
        )
        table.clear()
        for n, h in enumerate(self.entries, 1):
            table.add_row(
                plain(n),
                status(h.status.value, h.manual),
                plain(f"{h.score:+.2f}" if h.evidence else ""),
                plain(h.title + (" (yours)" if h.user_defined else "")),
                plain(len(h.evidence) or ""),
            )
        if self.entries:
            table.move_cursor(row=min(max(cursor, 0), len(self.entries) - 1))
        self._show_entry()

    def selected(self) -> LedgerEntry | None:
        row = self.query_one(DataTable).cursor_row
        return self.entries[row] if self.entries and 0 <= row < len(self.entries) else None

    def _show_entry(self) -> None:
        h = self.selected()
        if h is None:
            return
        lines = [f"[b]{safe(h.title)}[/b] [dim]{safe(h.hypothesis_id)}[/]"]
        if h.explanation:
            lines.append(safe(h.explanation))
        if h.manual:
            lines.append(
                f"Status set by hand{': ' + safe(h.manual_reason) if h.manual_reason else ''}"
            )
        if h.proof is not None:
            lines.append(
                f"[b]What moved the metric:[/b] {safe(h.proof.sentence)} "
                f"[dim](replay: detective experiment CASE --set {safe(h.proof.label)})[/]"
            )
        elif h.interventions:
            o = h.interventions[0]
            lines.append(f"[b]Intervention, {o.effect.value}:[/b] {safe(o.sentence)}")
        if h.explained_by:
            lines.append(f"A description, not a cause: explained by {safe(h.explained_by)}")
        for e in h.evidence:
            lines.append(
                f"{'▲' if e.direction.value == 'supports' else '▼'} {safe(e.check_id)} "
                f"({e.strength.value}): {safe(e.reason)}"
            )
        if h.review_agree or h.review_disagree:
            lines.append(f"Reviews: {h.review_agree} agree, {h.review_disagree} disagree")
        lines.extend(f"[i]Note:[/i] {safe(n)}" for n in h.notes)
        self.query_one("#entry-text", Static).update("\n".join(lines))

    def on_data_table_row_highlighted(self) -> None:
        self._show_entry()
        h = self.selected()
        if h is not None and not self.current.readonly:
            self.current.session.kv_set(CURSOR_KEY, h.hypothesis_id)

    def on_data_table_row_selected(self) -> None:
        self.action_evidence()

    def action_evidence(self) -> None:
        h = self.selected()
        if h is not None and h.evidence:
            self.app.goto("finding", h.evidence[0].check_id)

    def action_add(self) -> None:
        if not self.writable():
            return

        def added(values: tuple[str, ...] | None) -> None:
            if values:
                self.current.session.add_hypothesis(values[0], values[1])
                self.refresh_data()
                self.notify("Hypothesis added.")

        self.app.push_screen(
            Prompt("Your hypothesis", ("Title", "Why you suspect it (optional)")), added
        )

    def action_set_status(self) -> None:
        h = self.selected()
        if h is None or not self.writable():
            return
        options = [(s.value, f"{s.value}") for s in HypothesisStatus]
        options.append((CLEAR, "clear — let the evidence decide"))

        def chosen(value: str | None) -> None:
            if value is None:
                return
            self.current.session.set_status(
                h.hypothesis_id,
                None if value == CLEAR else HypothesisStatus(value),
                "set in the TUI",
            )
            self.refresh_data()

        self.app.push_screen(Choice(f"Status of “{h.title}”", options), chosen)

    def action_note(self) -> None:
        h = self.selected()
        if h is None or not self.writable():
            return

        def noted(values: tuple[str, ...] | None) -> None:
            if values:
                self.current.session.add_note(h.hypothesis_id, values[0])
                self.refresh_data()

        self.app.push_screen(Prompt(f"Note on “{h.title}”", ("Note",)), noted)

    def commands(self) -> Iterator[SystemCommand]:
        yield SystemCommand("Add a hypothesis", "Your own suspicion, tracked", self.action_add)
        yield SystemCommand("Set the status", "Of the selected hypothesis", self.action_set_status)
        yield SystemCommand("Add a note", "To the selected hypothesis", self.action_note)
        yield from super().commands()
