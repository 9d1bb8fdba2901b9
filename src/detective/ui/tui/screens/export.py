"""Export: the findings report as Markdown, HTML or JSON, written beside the session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from detective.ui.tui.screens.base import SessionScreen
from detective.ui.tui.text import plain, safe

FORMATS = (("md", "Markdown"), ("html", "HTML"), ("json", "JSON"))


def shown(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return str(path)
    return str(path) if rel.startswith("..") else rel


def write_report(session_dir: Path, fmt: str) -> Path:
    """Render the report and write it atomically as <session>/report.<fmt>."""
    from detective.core.report import build_report
    from detective.core.session import Session
    from detective.ui.export import Format, render

    output = session_dir / f"report.{fmt}"
    with Session.open(session_dir) as s:
        text = render(build_report(s), Format(fmt), s.artifacts_dir, output)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)
    return output


class ExportScreen(SessionScreen):
    SCREEN = "export"
    ALWAYS_REFRESH = True  # the report files on disk
    DEFAULT_CSS = """
    ExportScreen Vertical { padding: 1 2; }
    ExportScreen Horizontal { height: auto; margin: 1 0; }
    ExportScreen Button { margin-right: 2; }
    ExportScreen #written { height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "export('md')", "Markdown"),
        Binding("h", "export('html')", "HTML"),
        Binding("j", "export('json')", "JSON"),
    ]

    def body(self) -> ComposeResult:
        with Vertical():
            yield Static(
                "The report holds the ranked hypotheses with their evidence, every finding, "
                "experiments and reviews. It is written into the session folder."
            )
            with Horizontal():
                for fmt, label in FORMATS:
                    yield Button(f"{label} ({fmt[0]})", id=f"fmt-{fmt}")
            yield Static("", id="written")

    def refresh_data(self) -> None:
        existing = [
            f"{label}: [b]{safe(shown(self.current.path / f'report.{fmt}'))}[/b]"
            for fmt, label in FORMATS
            if (self.current.path / f"report.{fmt}").exists()
        ]
        self.query_one("#written", Static).update(
            "Written so far:\n" + "\n".join(existing) if existing else "No report written yet."
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_export((event.button.id or "fmt-md").removeprefix("fmt-"))

    def action_export(self, fmt: str) -> None:
        self.query_one("#written", Static).update(plain(f"Writing the {fmt} report…"))
        self.export(fmt)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False, name="exporting")
    def export(self, fmt: str) -> None:
        path = write_report(self.current.path, fmt)
        self.app.call_from_thread(self._written, path)

    def _written(self, path: Path) -> None:
        self.refresh_data()
        self.notify(f"Wrote {shown(path)}")

    def commands(self) -> Iterator[SystemCommand]:
        for fmt, label in FORMATS:
            yield SystemCommand(
                f"Export {label}",
                f"Write report.{fmt} into the session folder",
                lambda f=fmt: self.action_export(f),
            )
        yield from super().commands()
