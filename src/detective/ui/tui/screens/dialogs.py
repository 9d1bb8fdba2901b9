"""Modal dialogs: an error with its traceback, a short text prompt, a choice."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from detective.ui.tui.text import plain

DIALOG_CSS = """
{name} {{ align: center middle; background: $background 60%; }}
{name} > Vertical {{
    width: 90%; max-width: 100; height: auto; max-height: 90%;
    border: thick $primary; background: $surface; padding: 0 1;
}}
{name} .title {{ text-style: bold; padding-bottom: 1; }}
"""


class ErrorDialog(ModalScreen[None]):
    """What went wrong, in words, with the traceback below it. Never a crash."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="ErrorDialog")
        + """
    ErrorDialog > Vertical { border: thick $error; }
    ErrorDialog #traceback { height: auto; max-height: 14; border: round $panel; }
    ErrorDialog #message { padding-bottom: 1; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter", "dismiss", "Close"),
    ]

    def __init__(self, title: str, message: str, details: str = "") -> None:
        super().__init__()
        self.title_text, self.message, self.details = title, message, details

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(plain(self.title_text), classes="title")
            yield Static(plain(self.message), id="message")
            if self.details.strip():
                with VerticalScroll(id="traceback"):
                    yield Static(plain(self.details.rstrip()))
            yield Button("Close (esc)", variant="error", id="close")

    def on_button_pressed(self) -> None:
        self.dismiss()


class Prompt(ModalScreen[tuple[str, ...] | None]):
    """One or more labelled text fields; returns their values, or None when cancelled."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="Prompt")
        + """
    Prompt .error { color: $error; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, fields: tuple[str, ...], required: int = 1) -> None:
        super().__init__()
        self.title_text, self.fields, self.required = title, fields, required

    def compose(self) -> ComposeResult:
        from detective.ui.tui.widgets.form_input import FormInput

        with Vertical():
            yield Label(plain(self.title_text), classes="title")
            for i, name in enumerate(self.fields):
                yield Label(plain(name))
                yield FormInput(id=f"field-{i}")
            yield Static("", classes="error")
            hint = "tab: next field · " if len(self.fields) > 1 else ""
            yield Static(f"[dim]enter: save · {hint}esc: cancel[/]")

    def on_input_changed(self) -> None:
        self.query_one(".error", Static).update("")  # a stale error goes once the user types

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter saves, from any field (as the hint says); an empty required field gets the
        focus and says so."""
        event.stop()
        inputs = list(self.query(Input))
        values = tuple(i.value.strip() for i in inputs)
        missing = next((i for i, v in enumerate(values[: self.required]) if not v), None)
        if missing is not None:
            self.query_one(".error", Static).update(
                plain(f"Please fill in: {self.fields[missing]}")
            )
            inputs[missing].focus()
            return
        self.dismiss(values)


class Choice(ModalScreen[str | None]):
    """Pick one of a few options; returns its id, or None when cancelled."""

    DEFAULT_CSS = DIALOG_CSS.format(name="Choice")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, options: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text, self.options = title, options

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(plain(self.title_text), classes="title")
            yield OptionList(*(Option(plain(label), id=oid) for oid, label in self.options))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
