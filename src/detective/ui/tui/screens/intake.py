"""Intake: what the user sees and knows, validated; dataset facts read from the case.

A new investigation starts from here; for an open session the same form edits it, saved as the
user types (only fields that validate are saved).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static

from detective.core.playbook import SYMPTOM_TEXT
from detective.ui.tui.screens.base import SessionScreen
from detective.ui.tui.text import plain
from detective.ui.tui.widgets.form_input import FormInput
from detective.workflows.investigation import IntakeForm, validate

if TYPE_CHECKING:
    from detective.workflows.investigation import DatasetFacts

FIELDS: tuple[tuple[str, str, str], ...] = (
    ("case_path", "Case file", "path/to/case.py"),
    ("session_dir", "Session folder", "sessions/my-model"),
    ("symptom", "Symptom", ""),
    ("reported_metric", "Reported accuracy", "0.87 or 87% (optional)"),
    ("logs", "Training logs", "a .csv file or a TensorBoard folder (optional)"),
    ("model_notes", "Model / config", "e.g. ResNet-18, AdamW 1e-3, 30 epochs (optional)"),
    ("tried", "Already tried", "e.g. lowered the LR, more augmentation (optional)"),
)


def describe_facts(facts: DatasetFacts) -> str:
    lines = [f"{len(facts.classes)} classes"]
    for s in facts.splits:
        size = "size unknown" if s.size is None else f"{s.size:,} items"
        line = f"{s.name}: {size}"
        if s.imbalance is not None:
            ratio = "a class is missing" if s.imbalance == float("inf") else f"{s.imbalance:.2f}"
            line += f", largest/smallest class {ratio}"
        if s.note:
            line += f" ({s.note})"
        lines.append(line)
    return " · ".join(lines)


class IntakeScreen(SessionScreen):
    SCREEN = "intake"
    DEFAULT_CSS = """
    IntakeScreen VerticalScroll { padding: 0 1; }
    IntakeScreen VerticalScroll > Horizontal { height: 1; margin-top: 1; }
    IntakeScreen Horizontal Label { width: 20; color: $text-muted; }
    IntakeScreen Horizontal Input, IntakeScreen Horizontal Select { width: 1fr; }
    IntakeScreen .error { color: $error; padding-left: 20; height: auto; }
    IntakeScreen .error.-empty { display: none; }
    IntakeScreen #facts { margin-top: 1; padding: 0 1; border: round $panel; height: auto; }
    IntakeScreen #start { margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "Start / save"),
        Binding("ctrl+f", "facts", "Read dataset facts"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.existing = False
        self.auto_session_dir = ""  # what we filled in; a value the user gave is never replaced

    def body(self) -> ComposeResult:
        self.existing = self.app.current is not None
        form = self._saved_form()
        with VerticalScroll():
            for name, label, placeholder in FIELDS:
                with Horizontal(classes="row"):
                    yield Label(label)
                    if name == "symptom":
                        yield Select(
                            [(text, s.value) for s, text in SYMPTOM_TEXT.items()],
                            value=form.symptom or Select.NULL,
                            prompt="choose what you observe",
                            id=name,
                            compact=True,
                        )
                    else:
                        yield FormInput(
                            getattr(form, name),
                            placeholder=placeholder,
                            id=name,
                            compact=True,
                            disabled=self.existing and name in ("case_path", "session_dir"),
                        )
                yield Static("", id=f"{name}-error", classes="error -empty")
            yield Static("Dataset facts appear here once the case is read.", id="facts")
            if not self.existing:
                yield Button("Start the investigation (ctrl+s)", variant="primary", id="start")

    def _saved_form(self) -> IntakeForm:
        if self.app.current is None:
            return IntakeForm("", "")
        from detective.core.intake import load_form

        s = self.current.session
        info = s.info
        saved = load_form(s) or IntakeForm(info.case_path, str(self.current.path))
        metric = info.options.reported_metric
        return replace(
            saved,
            symptom=info.symptom or "",
            reported_metric=saved.reported_metric or ("" if metric is None else f"{metric:g}"),
            logs=saved.logs or (info.options.logs or ""),
        )

    def on_mount(self) -> None:
        first = next((f for f in self.query(FormInput) if not f.disabled), None)
        if first is not None:
            first.focus()  # typing (or a paste) lands in the form, not on the page
        if self.form().case_path:
            self.action_facts()

    def form(self) -> IntakeForm:
        values = {}
        for f in fields(IntakeForm):
            if f.name == "device":
                continue
            widget = self.query_one(f"#{f.name}")
            value = widget.value if isinstance(widget, Input | Select) else ""
            values[f.name] = "" if value is Select.NULL or value is None else str(value)
        return IntakeForm(**values)

    def show_errors(self, only_touched: str | None = None, focus: bool = False) -> bool:
        """Mark the invalid fields (or only `only_touched`); with `focus`, move to the first."""
        errors = {e.field: e.message for e in validate(self.form())}
        if self.existing:
            errors.pop("session_dir", None)  # it holds this very session
        for name, _, _ in FIELDS:
            if only_touched is not None and name != only_touched:
                continue
            box = self.query_one(f"#{name}-error", Static)
            box.update(plain(errors.get(name, "")))
            box.set_class(name not in errors, "-empty")
        if focus and errors:
            first = next(name for name, _, _ in FIELDS if name in errors)
            self.query_one(f"#{first}").focus()
        return not errors

    @on(Input.Changed)
    @on(Select.Changed)
    def changed(self, event: Input.Changed | Select.Changed) -> None:
        name = event.control.id or ""
        if name == "case_path" and not self.existing:
            session_dir = self.query_one("#session_dir", Input)
            if session_dir.value in ("", self.auto_session_dir):
                stem = Path(event.value).stem if isinstance(event.value, str) else ""
                self.auto_session_dir = f"{self.app.sessions_root}/{stem}" if stem else ""
                session_dir.value = self.auto_session_dir
        if self.existing:
            self.save(name)
        elif not self.query_one(f"#{name}-error", Static).has_class("-empty"):
            self.show_errors(name)  # an error shown for this field goes once it is fixed

    def save(self, name: str) -> None:
        """Keep an existing session's intake in step with the form, field by field."""
        from detective.core.intake import save_form
        from detective.workflows.investigation import options_for

        form = self.form()
        errors = {e.field for e in validate(form)} - {"session_dir"}
        self.show_errors(name)
        if errors:
            return
        session = self.current.session
        info = session.info
        options = replace(
            options_for(form),
            device=info.options.device,
            sample=info.options.sample,
            seed=info.options.seed,
            llm=info.options.llm,
            llm_gpu_layers=info.options.llm_gpu_layers,
        )
        if options != info.options or form.symptom != info.symptom:
            session.update_info(symptom=form.symptom, options=options)
            self.current.forget_case()  # the next run uses the new options
        save_form(session, form)

    @on(Input.Submitted, "#case_path")
    def action_facts(self) -> None:
        case = self.form().case_path
        if not case or not Path(case).expanduser().is_file():
            self.show_errors("case_path")
            return
        box = self.query_one("#facts", Static)
        box.update("Reading the case…")
        self.read_facts(case, box)

    @work(thread=True, exclusive=True, group="facts", exit_on_error=False, name="reading the case")
    def read_facts(self, case: str, box: Static) -> None:
        from detective.workflows.investigation import dataset_facts

        facts = dataset_facts(case)  # imports torch: never on the UI thread
        self.app.call_from_thread(box.update, plain(describe_facts(facts)))

    @on(Button.Pressed, "#start")
    def action_submit(self) -> None:
        if not self.show_errors(focus=True):
            self.notify("Please fix the fields marked in red.", severity="warning")
            return
        if self.existing:
            self.notify("Saved.")
            return
        button = self.query_one("#start", Button)
        button.disabled = True
        button.label = "Starting… reading the case and its data (a few seconds)"
        self.notify("Starting the investigation: reading the case…")
        self.start(self.form(), button)

    @work(thread=True, exclusive=True, group="start", exit_on_error=False, name="starting")
    def start(self, form: IntakeForm, button: Button) -> None:
        from detective.workflows.investigation import start

        def ready() -> None:
            button.disabled = False
            button.label = "Start the investigation (ctrl+s)"

        try:
            start(form).session.close()
        finally:
            self.app.call_from_thread(ready)
        self.app.call_from_thread(self.app.open_session, form.session_dir)

    def commands(self) -> Iterator[SystemCommand]:
        yield SystemCommand("Start / save the intake", "Validate the form", self.action_submit)
        yield SystemCommand(
            "Read dataset facts", "Split sizes and class balance", self.action_facts
        )
        yield from super().commands()
