"""Failures and clusters: a review loop over what the error-analysis checks found.

The list (focused on entry) holds the failures checks typed as such — images of a split
(`val:17`) and confusion pairs (`2→1`) — and the cluster tables; y / x / k store a verdict on the
selected row and move to the next. Beside the list: the image that shows the selected failure,
its caption and the artifact's path (to copy with scp). Says plainly when those checks have not
run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.cells import cell_len
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Label, Static

from detective.core.session import ReviewVerdict
from detective.ui.tui.screens.base import SessionScreen
from detective.ui.tui.text import plain

if TYPE_CHECKING:
    from detective.ui.browse import FailureItem, Gallery

EMPTY = (
    "No failures in this session yet. The error-analysis checks (the collection pass, "
    "galleries, clusters) list them here once they have run: see the playbook (2)."
)
REVIEW_MARK = {
    "agree": ("✓ agree", "bold"),
    "disagree": ("✗ disagree", "bold reverse"),
    "skip": ("– skip", "dim"),
}  # glyphs first: readable without colour
NOT_REVIEWED = ("·", "dim")
# The review column is as wide as its widest mark from the start. Left to auto-width, it widens
# only when the table is next idle, after the rows are added; a frame painted in between stays
# truncated ("✓ agre"): Textual's DataTable caches painted lines under a key that ignores column
# widths. A fixed width also keeps the columns still while reviewing.
REVIEW = "review"
REVIEW_WIDTH = max(
    cell_len(text) for text, _ in (*REVIEW_MARK.values(), NOT_REVIEWED, (REVIEW, ""))
)  # 10: "✗ disagree"


def copyable(path: Path) -> str:
    """A path to copy for scp: relative to where detective runs when it is below it (short,
    and the user knows that folder), else absolute."""
    full = path.resolve()
    try:
        return str(full.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(full)


class FailuresScreen(SessionScreen):
    SCREEN = "failures"
    DEFAULT_CSS = """
    FailuresScreen #panes { height: 1fr; }
    FailuresScreen #lists { width: 1fr; min-width: 40; }
    FailuresScreen #failures { height: 1fr; }
    FailuresScreen .clusters { height: auto; max-height: 7; }
    FailuresScreen .heading { text-style: bold; padding: 0 1; }
    FailuresScreen #viewer { width: 38; padding: 0 1; border-left: solid $panel; }
    FailuresScreen #viewer-title { text-style: bold; }
    FailuresScreen #viewer-image { height: auto; }
    FailuresScreen #viewer-path { color: $text-muted; }
    FailuresScreen #empty { padding: 1 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "review('agree')", "Agree"),
        Binding("x", "review('disagree')", "Disagree"),
        Binding("k", "review('skip')", "Skip"),
        Binding("g", "overlay", "Grad-CAM"),
        Binding("v", "next_image", "Next image"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.items: list[FailureItem] = []
        self.clusters: list[str] = []  # review target id of each cluster row, in table order
        self.galleries: list[Gallery] = []
        self.overlay = False
        self.gallery_index = -1  # -1: the selected failure's own image
        self._shown = ""

    def body(self) -> ComposeResult:
        from detective.ui.browse import cluster_tables, cluster_target, failure_items, galleries

        session = self.current.session
        self.items = failure_items(session)
        self.galleries = galleries(session)
        clusters = cluster_tables(session)
        if not (self.items or self.galleries or clusters):
            yield Static(plain(EMPTY), id="empty")
            return
        with Horizontal(id="panes"):
            with Vertical(id="lists"):
                if self.items:
                    yield Label(
                        plain(f"Failures ({len(self.items)}) · y/x/k"),
                        classes="heading",
                    )
                    table: DataTable[object] = DataTable(cursor_type="row", id="failures")
                    table.add_columns("failure", "true→pred", "conf")
                    table.add_column(REVIEW, width=REVIEW_WIDTH)
                    yield table
                for check_id, t in clusters:
                    yield Label(plain(f"{t.name} ({check_id})"), classes="heading")
                    ctable: DataTable[object] = DataTable(cursor_type="row", classes="clusters")
                    ctable.add_columns(*(plain(c) for c in t.columns))
                    ctable.add_column(REVIEW, width=REVIEW_WIDTH)
                    for row in t.rows:
                        self.clusters.append(cluster_target(t, row))
                    yield ctable
            with VerticalScroll(id="viewer"):
                yield Label("", id="viewer-title")
                yield Vertical(id="viewer-image")
                yield Static("", id="viewer-caption")
                yield Static("", id="viewer-path")

    def on_mount(self) -> None:
        tables = list(self.query(DataTable))
        if tables:
            tables[0].focus()  # the review loop starts on the list, not on the page

    def refresh_data(self) -> None:
        from detective.ui.browse import cluster_tables, cluster_target

        reviews = {
            (r.target_kind, r.target_id): r.verdict.value for r in self.current.session.reviews()
        }

        def mark(kind: str, target: str) -> object:
            text, style = REVIEW_MARK.get(reviews.get((kind, target), ""), NOT_REVIEWED)
            return plain(text, style)

        if self.items:
            table = self.query_one("#failures", DataTable)
            cursor = table.cursor_row
            table.clear()
            for it in self.items:
                what = it.key if it.kind == "image" else f"pair ×{it.count}"
                table.add_row(
                    plain(what),
                    plain(f"{it.true}→{it.pred}"),
                    plain("" if it.confidence is None else f"{it.confidence:.2f}"),
                    mark(it.review_kind, it.key),
                )
            table.move_cursor(row=max(0, min(cursor, len(self.items) - 1)))
        tables = list(self.query(".clusters").results(DataTable))
        for widget, (_check, t) in zip(tables, cluster_tables(self.current.session), strict=False):
            cursor = widget.cursor_row
            widget.clear()
            for row in t.rows:
                widget.add_row(*(plain(c) for c in row), mark("cluster", cluster_target(t, row)))
            widget.move_cursor(row=max(0, cursor))
        self._show_viewer()

    # --- the viewer beside the list ---------------------------------------------------------
    def _selected_item(self) -> FailureItem | None:
        if not self.items:
            return None
        row = self.query_one("#failures", DataTable).cursor_row
        return self.items[row] if 0 <= row < len(self.items) else None

    def _show_viewer(self) -> None:
        if not self.is_mounted or not self.query("#viewer"):
            return
        item = self._selected_item()
        title, caption, path, check = "", "", "", ""
        wanted = [g for g in self.galleries if g.overlay == self.overlay] or self.galleries
        if self.gallery_index < 0 and not self.overlay and item is not None and item.image:
            path, check = item.image, item.check_id
            title = f"{item.key}: true {item.true} → pred {item.pred}"
            caption = item.caption or next(
                (g.caption for g in self.galleries if g.path == item.image), ""
            )
        elif wanted:
            g = wanted[max(self.gallery_index, 0) % len(wanted)]
            path, check, caption = g.path, g.check_id, g.caption
            title = g.name + (" · Grad-CAM" if g.overlay else "")
        self.query_one("#viewer-title", Label).update(plain(title or "No image"))
        self.query_one("#viewer-caption", Static).update(
            plain(f"{caption} ({check})" if caption else check)
        )
        full = self.current.session.artifacts_dir / path if path else None
        self.query_one("#viewer-path", Static).update(plain(copyable(full) if full else ""))
        if path == self._shown:
            return
        self._shown = path
        from detective.ui.tui.widgets.image import image_view

        box = self.query_one("#viewer-image", Vertical)
        box.remove_children()
        if full is not None:
            box.mount(image_view(full, max_cols=34, max_rows=12))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "failures":
            self.gallery_index = -1  # back to the selected failure's own image
        self._show_viewer()

    def action_next_image(self) -> None:
        if not self.galleries:
            self.notify("No images in this session's failures.")
            return
        self.gallery_index += 1
        self._show_viewer()

    def action_overlay(self) -> None:
        if not any(g.overlay for g in self.galleries):
            self.notify("No Grad-CAM overlays in this session (the capacity checks write them).")
            return
        self.overlay = not self.overlay
        self._show_viewer()

    # --- reviewing --------------------------------------------------------------------------
    def _target(self) -> tuple[str, str] | None:
        focused = self.focused
        if isinstance(focused, DataTable) and focused.has_class("clusters"):
            offset = 0
            for t in self.query(".clusters").results(DataTable):
                if t is focused:
                    i = offset + t.cursor_row
                    return ("cluster", self.clusters[i]) if i < len(self.clusters) else None
                offset += t.row_count
        item = self._selected_item()
        return (item.review_kind, item.key) if item is not None else None

    def action_review(self, verdict: str) -> None:
        target = self._target()
        if target is None:
            self.notify("Nothing to review here yet.")
            return
        if not self.writable():
            return
        self.current.session.add_review(target[0], target[1], ReviewVerdict(verdict))
        focused = self.focused
        table = focused if isinstance(focused, DataTable) else None
        if table is None and self.items:
            table = self.query_one("#failures", DataTable)
        self.refresh_data()
        if table is not None and table.cursor_row + 1 < table.row_count:
            table.move_cursor(row=table.cursor_row + 1)  # on to the next one

    def commands(self) -> Iterator[SystemCommand]:
        for verdict in ReviewVerdict:
            yield SystemCommand(
                f"Review: {verdict.value}",
                "The selected failure or cluster, then the next one",
                lambda v=verdict.value: self.action_review(v),
            )
        yield SystemCommand("Toggle Grad-CAM overlay", "In the viewer", self.action_overlay)
        yield SystemCommand("Next image", "Cycle the failures' images", self.action_next_image)
        yield from super().commands()
