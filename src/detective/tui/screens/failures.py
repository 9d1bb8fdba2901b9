"""Failures and clusters: what the error-analysis checks found, with review keys.

Shows whatever the session holds — failure rows (true / pred / confidence) from findings' tables,
image galleries (with a Grad-CAM overlay toggle when a check wrote overlays) and cluster tables —
and says plainly when those checks have not run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Label, Static

from detective.session import ReviewVerdict
from detective.tui.screens.base import SessionScreen
from detective.tui.text import plain

if TYPE_CHECKING:
    from detective.browse import FailureItem, Gallery

EMPTY = (
    "No failures in this session yet. The error-analysis checks (the collection pass, "
    "galleries, clusters) list them here once they have run: see the playbook (2)."
)
REVIEW_STYLE = {"agree": "green", "disagree": "red", "skip": "dim"}


class FailuresScreen(SessionScreen):
    SCREEN = "failures"
    DEFAULT_CSS = """
    FailuresScreen VerticalScroll { padding: 0 1; }
    FailuresScreen DataTable { height: auto; max-height: 10; }
    FailuresScreen .heading { text-style: bold; margin-top: 1; }
    FailuresScreen #gallery { height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "review('agree')", "Agree"),
        Binding("x", "review('disagree')", "Disagree"),
        Binding("k", "review('skip')", "Skip"),
        Binding("g", "overlay", "Grad-CAM on/off"),
        Binding("v", "next_image", "Next image"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.items: list[FailureItem] = []
        self.clusters: list[str] = []  # review target id of each cluster row, in table order
        self.galleries: list[Gallery] = []
        self.overlay = False
        self.gallery_index = 0

    def body(self) -> ComposeResult:
        from detective.browse import cluster_tables, cluster_target, failure_items, galleries

        session = self.current.session
        self.items = failure_items(session)
        self.galleries = galleries(session)
        clusters = cluster_tables(session)
        with VerticalScroll():
            if not (self.items or self.galleries or clusters):
                yield Static(plain(EMPTY), id="empty")
                return
            if self.items:
                yield Label(
                    plain(f"Failures ({len(self.items)}) · y agree · x disagree · k skip"),
                    classes="heading",
                )
                table: DataTable[object] = DataTable(cursor_type="row", id="failures")
                table.add_columns("check", "item", "true", "pred", "conf", "review")
                yield table
            for check_id, t in clusters:
                yield Label(plain(f"{t.name} ({check_id})"), classes="heading")
                ctable: DataTable[object] = DataTable(cursor_type="row", classes="clusters")
                ctable.add_columns(*(plain(c) for c in t.columns), "review")
                for row in t.rows:
                    self.clusters.append(cluster_target(t, row))
                yield ctable
            if self.galleries:
                yield Label("", id="gallery-title", classes="heading")
                yield Vertical(id="gallery")

    def refresh_data(self) -> None:
        from detective.browse import cluster_tables, cluster_target

        reviews = {
            (r.target_kind, r.target_id): r.verdict.value for r in self.current.session.reviews()
        }

        def mark(kind: str, target: str) -> object:
            v = reviews.get((kind, target), "")
            return plain(v or "·", REVIEW_STYLE.get(v, "dim"))

        if self.items:
            table = self.query_one("#failures", DataTable)
            cursor = table.cursor_row
            table.clear()
            for it in self.items:
                table.add_row(
                    plain(it.check_id),
                    plain(it.index),
                    plain(it.true),
                    plain(it.pred),
                    plain("" if it.confidence is None else f"{it.confidence:.2f}"),
                    mark("failure", it.key),
                )
            table.move_cursor(row=max(0, min(cursor, len(self.items) - 1)))
        tables = list(self.query(".clusters").results(DataTable))
        for widget, (_check, t) in zip(tables, cluster_tables(self.current.session), strict=False):
            cursor = widget.cursor_row
            widget.clear()
            for row in t.rows:
                widget.add_row(*(plain(c) for c in row), mark("cluster", cluster_target(t, row)))
            widget.move_cursor(row=max(0, cursor))
        self._show_gallery()

    def _show_gallery(self) -> None:
        if not self.galleries:
            return
        wanted = [g for g in self.galleries if g.overlay == self.overlay] or self.galleries
        g = wanted[self.gallery_index % len(wanted)]
        self.query_one("#gallery-title", Label).update(
            plain(f"{g.caption or g.name} ({g.check_id})" + (" · Grad-CAM" if g.overlay else ""))
        )
        from detective.tui.widgets.image import ImageView

        box = self.query_one("#gallery", Vertical)
        box.remove_children()
        box.mount(ImageView(self.current.session.artifacts_dir / g.path))

    def action_next_image(self) -> None:
        self.gallery_index += 1
        self._show_gallery()

    def action_overlay(self) -> None:
        if not any(g.overlay for g in self.galleries):
            self.notify("No Grad-CAM overlays in this session (the capacity checks write them).")
            return
        self.overlay = not self.overlay
        self._show_gallery()

    def _target(self) -> tuple[str, str] | None:
        focused = self.focused
        if isinstance(focused, DataTable) and focused.has_class("clusters"):
            tables = list(self.query(".clusters").results(DataTable))
            offset = 0
            for t in tables:
                if t is focused:
                    i = offset + t.cursor_row
                    return ("cluster", self.clusters[i]) if i < len(self.clusters) else None
                offset += t.row_count
        if self.items:
            row = self.query_one("#failures", DataTable).cursor_row
            if 0 <= row < len(self.items):
                return "failure", self.items[row].key
        return None

    def action_review(self, verdict: str) -> None:
        target = self._target()
        if target is None:
            self.notify("Nothing to review here yet.")
            return
        self.current.session.add_review(target[0], target[1], ReviewVerdict(verdict))
        table = self.focused if isinstance(self.focused, DataTable) else None
        self.refresh_data()
        if table is not None and table.cursor_row + 1 < table.row_count:
            table.move_cursor(row=table.cursor_row + 1)  # on to the next one

    def commands(self) -> Iterator[SystemCommand]:
        for verdict in ReviewVerdict:
            yield SystemCommand(
                f"Review: {verdict.value}",
                "The selected failure or cluster",
                lambda v=verdict.value: self.action_review(v),
            )
        yield SystemCommand("Toggle Grad-CAM overlay", "In the gallery", self.action_overlay)
        yield from super().commands()
