"""Every key of the app in one place (`?`), and every screen's actions for the command palette.

Both are read from the screens' own BINDINGS, so they cannot drift from what the keys do.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

from detective.ui.tui.screens import _SCREENS
from detective.ui.tui.screens.base import NAV
from detective.ui.tui.screens.dialogs import DIALOG_CSS
from detective.ui.tui.text import plain

if TYPE_CHECKING:
    from detective.ui.tui.app import DetectiveApp

GLOBAL_KEYS = (
    ("1 … 6", "switch screens: " + ", ".join(f"{k} {label}" for _, k, label in NAV)),
    ("esc", "back: a finding → the playbook → the sessions → the open session"),
    ("ctrl+p", "command palette: every action of every screen"),
    ("?", "this help"),
    ("q", "quit (the session is saved as you go; a run stops at its next batch)"),
    ("tab / shift+tab", "next / previous field or table"),
    ("enter", "in a dialog: save; in a table: open the row"),
)
TITLES = {
    "start": "Sessions",
    "finding": "Finding",
    **{name: label for name, _, label in NAV},
}


def _screen_class(name: str) -> type[Screen[Any]]:
    module, cls = _SCREENS[name]
    return getattr(import_module(module), cls)  # type: ignore[no-any-return]


def _bindings(cls: type[Screen[Any]]) -> list[Binding]:
    out = []
    for b in cls.BINDINGS:
        if isinstance(b, Binding) and b.description and not b.action.startswith("app.goto"):
            out.append(b)
    return out


def screen_keys() -> list[tuple[str, list[tuple[str, str]]]]:
    from detective.ui.tui.screens.start import StartScreen

    classes: list[tuple[str, type[Screen[Any]]]] = [("start", StartScreen)]
    classes += [(name, _screen_class(name)) for name in _SCREENS]
    return [
        (TITLES.get(name, name), [(b.key.replace(",", " / "), b.description) for b in _bindings(c)])
        for name, c in classes
    ]


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = (
        DIALOG_CSS.format(name="HelpScreen")
        + """
    HelpScreen VerticalScroll { height: auto; max-height: 100%; }
    HelpScreen .section { text-style: bold; margin-top: 1; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close", show=False)
    ]

    def __init__(self, under: Screen[Any] | None = None) -> None:
        super().__init__()
        self.under = type(under).__name__ if under is not None else ""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Keys (esc closes)", classes="title")
            with VerticalScroll():
                yield Static(self._table(GLOBAL_KEYS))
                for title, keys in screen_keys():
                    if keys:
                        yield Label(plain(title), classes="section")
                        yield Static(self._table(keys))

    @staticmethod
    def _table(rows: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> Any:
        from rich.table import Table

        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold", no_wrap=True)
        t.add_column()
        for key, what in rows:
            t.add_row(key, what)
        return t


def other_screens_commands(app: DetectiveApp, current: Screen[Any]) -> Iterator[SystemCommand]:
    """Each action of every other session screen: go there, then do it."""
    for name, key, label in NAV:
        cls = _screen_class(name)
        if isinstance(current, cls):
            continue
        for b in _bindings(cls):

            def go(n: str = name, action: str = b.action) -> None:
                app.goto(n)
                app.call_after_refresh(app.screen.run_action, action)

            yield SystemCommand(f"{label}: {b.description}", f"Key {key}, then {b.key}", go)
