"""A text field of a form that takes a pasted row of fields: "path<Tab>name" fills this field
and the next ones, in order, instead of gluing them into one value."""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class FormInput(Input):
    def _on_paste(self, event: events.Paste) -> None:
        text = event.text.splitlines()[0] if event.text else ""
        if "\t" not in text:
            return  # Input's own handler (Textual calls each class's in turn) inserts it
        event.prevent_default()  # not Input's handler too: it would glue the fields together
        event.stop()
        first, *rest = text.split("\t")
        self.insert_text_at_cursor(first)
        field: FormInput = self
        for part in rest:  # set at once, in order: nothing else runs between the fields
            following = field._next_field()
            if following is None:
                break
            following.value = part  # the pasted row replaces what the next fields held
            field = following
        field.focus()

    def _next_field(self) -> FormInput | None:
        fields = [f for f in self.screen.query(FormInput) if not f.disabled]
        at = fields.index(self) if self in fields else -1
        return fields[at + 1] if 0 <= at < len(fields) - 1 else None
