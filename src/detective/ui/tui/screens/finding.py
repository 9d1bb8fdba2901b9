"""Finding: the evidence of one check — numbers, tables, curves, images — and what it moved."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Label, Static

from detective.ui.tui.screens.base import SessionScreen
from detective.ui.tui.text import plain, safe, status, verdict

if TYPE_CHECKING:
    from detective.core.findings import Finding, Table
    from detective.core.session import StoredFinding


def table_widget(table: Table) -> DataTable[object]:
    widget: DataTable[object] = DataTable(cursor_type="row", zebra_stripes=True)
    widget.add_columns(*(plain(c) for c in table.columns))
    for row in table.rows:
        widget.add_row(*(plain(c) for c in row))
    return widget


class FindingScreen(SessionScreen):
    SCREEN = "finding"
    DEFAULT_CSS = """
    FindingScreen VerticalScroll { padding: 0 1; }
    FindingScreen .heading { text-style: bold; margin-top: 1; }
    FindingScreen DataTable { height: auto; max-height: 12; }
    FindingScreen #summary { margin-top: 1; }
    FindingScreen .error { color: $error; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, check_id: str) -> None:
        super().__init__()
        self.check_id = check_id

    def _stored(self) -> StoredFinding | None:
        s = self.current.session
        found = [
            f for f in s.findings(fingerprint=s.latest_fingerprint()) if f.check_id == self.check_id
        ]
        return found[-1] if found else None

    def body(self) -> ComposeResult:
        stored = self._stored()
        with VerticalScroll():
            if stored is None:
                yield Static(plain(f"No finding for {self.check_id} in this session yet."))
                return
            yield from self._evidence(stored.finding)

    def _evidence(self, f: Finding) -> ComposeResult:
        from detective.core.registry import all_checks
        from detective.ui.browse import curves

        cls = all_checks().get(f.check_id)
        title = cls.title if cls else f.check_id
        yield Label(
            verdict(f.verdict.value)
            + plain(f"  {title}", "bold")
            + plain(f"  ({f.check_id})", "dim")
        )
        yield Static(plain(f.summary), id="summary")
        if f.next_step:
            yield Static(f"[b]Next step:[/b] {safe(f.next_step)}")
        if f.effects:
            yield Label("Hypotheses it moved", classes="heading")
            yield Static(self._effects(f))
        if f.metrics:
            yield Label("Numbers", classes="heading")
            metrics: DataTable[object] = DataTable(cursor_type="row", zebra_stripes=True)
            metrics.add_columns("metric", "value", "unit", "note")
            for m in f.metrics:
                metrics.add_row(plain(m.name), plain(m.value), plain(m.unit), plain(m.note))
            yield metrics
        plots = curves(f)
        if plots:
            from detective.ui.tui.widgets.plot import CurvePlot

            for curve in plots:
                yield CurvePlot(curve)
        for table in f.tables:
            yield Label(plain(table.name), classes="heading")
            yield table_widget(table)
        if f.artifacts:
            from detective.ui.tui.widgets.image import image_view

            for a in f.artifacts:
                yield Label(plain(a.caption or a.name), classes="heading")
                if a.media_type.startswith("image/"):
                    yield image_view(self.current.session.artifacts_dir / a.path)
                else:
                    yield Static(plain(a.path))
        for note in f.notes:
            yield Static(plain(f"• {note}"))
        if f.error:
            yield Label("Traceback", classes="heading error")
            yield Static(plain(f.error.rstrip()))

    def _effects(self, f: Finding) -> str:
        from detective.core.hypotheses import describe
        from detective.core.ledger import session_ledger

        now = {h.hypothesis_id: h for h in session_ledger(self.current.session)}
        lines = []
        for e in f.effects:
            entry = now.get(e.hypothesis)
            state = status(entry.status.value, entry.manual).markup if entry else ""
            lines.append(
                f"{'▲' if e.direction.value == 'supports' else '▼'} {e.direction.value} "
                f"({e.strength.value}) [b]{safe(describe(e.hypothesis).title)}[/b] → now {state}\n"
                f"  [dim]{safe(e.reason)}[/]"
            )
        return "\n".join(lines)

    def on_screen_resume(self) -> None:
        self.current.remember(self.SCREEN, self.check_id)

    def action_back(self) -> None:
        self.app.goto("playbook")
