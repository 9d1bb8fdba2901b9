"""The intake form as the user filled it, stored in the session: what reports quote.

Kept in the core (not beside the intake workflow that starts runs) so that a report can quote
the form without importing the code that loads cases and opens sessions.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from detective.core.session import Session

INTAKE_KEY = "intake"  # Session.kv key holding the form as the user filled it


@dataclass(frozen=True)
class IntakeForm:
    """What the user tells us before anything runs. Free text stays text; numbers are parsed."""

    case_path: str
    session_dir: str
    symptom: str = ""
    reported_metric: str = ""  # "0.87", "87%" or empty
    logs: str = ""  # a CSV file or a TensorBoard folder
    model_notes: str = ""  # model / framework / training config, in the user's words
    tried: str = ""  # what has already been tried
    device: str = "auto"


def save_form(session: Session, form: IntakeForm) -> None:
    from detective.core.serde import to_jsonable

    session.kv_set(INTAKE_KEY, json.dumps({**to_jsonable(form), "saved_at": time.time()}))


def load_form(session: Session) -> IntakeForm | None:
    from detective.core.serde import from_jsonable

    raw = session.kv_get(INTAKE_KEY)
    if raw is None:
        return None
    try:
        return from_jsonable(IntakeForm, json.loads(raw))
    except (TypeError, ValueError, KeyError):
        return None
