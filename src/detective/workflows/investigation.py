"""Starting an investigation from the intake form: validation, dataset facts, session creation.

Headless and UI-free (the TUI's intake screen calls it; so could a script). `validate` is pure and
cheap; `dataset_facts` and `start` load the user's case, which imports torch, so callers run them
off the UI thread.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from detective.core.context import RunOptions
from detective.core.intake import IntakeForm, save_form
from detective.core.playbook import SYMPTOM_TEXT, Symptom

if TYPE_CHECKING:
    from detective.ui.headless import Prepared

LABEL_SCAN_LIMIT = 20_000  # items we are willing to index one by one to count labels


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


def parse_metric(text: str) -> float | None:
    """'0.87' or '87%' or '87' (read as a percentage) → 0.87; empty → None; else ValueError."""
    s = text.strip()
    if not s:
        return None
    percent = s.endswith("%")
    value = float(s.rstrip("%").strip())
    if percent or 1.0 < value <= 100.0:
        value /= 100.0
    if not 0.0 <= value <= 1.0:
        raise ValueError(s)
    return value


def _init_hint(path: Path) -> str | None:
    from detective.casekit.init import init_hint

    return init_hint(path)


def validate(form: IntakeForm) -> list[FieldError]:
    """Every problem with the form, each naming its field, in the form's order."""
    errors: list[FieldError] = []
    case = Path(form.case_path).expanduser() if form.case_path.strip() else None
    if case is None:
        errors.append(FieldError("case_path", "Give the path to your case file (a .py file)."))
    elif hint := _init_hint(case):  # data where a case belongs: say how to make the case
        errors.append(FieldError("case_path", hint))
    elif not case.is_file():
        errors.append(FieldError("case_path", f"No file at {case}."))
    elif case.suffix != ".py":
        errors.append(FieldError("case_path", "A case is a Python file ending in .py."))
    if not form.session_dir.strip():
        errors.append(FieldError("session_dir", "Name a folder for the session."))
    else:
        target = Path(form.session_dir).expanduser()
        if target.exists() and not target.is_dir():
            errors.append(FieldError("session_dir", f"{target} is a file, not a folder."))
        elif (target / "session.sqlite").exists():
            errors.append(
                FieldError("session_dir", f"{target} already holds a session: resume it instead.")
            )
    if form.symptom not in {s.value for s in Symptom}:
        errors.append(FieldError("symptom", "Choose the symptom that best fits what you see."))
    try:
        parse_metric(form.reported_metric)
    except ValueError:
        errors.append(
            FieldError(
                "reported_metric",
                "The reported metric is an accuracy: 0.87, 87 or 87% (or leave it empty).",
            )
        )
    if form.logs.strip():
        logs = Path(form.logs).expanduser()
        if not logs.exists():
            errors.append(FieldError("logs", f"No file or folder at {logs}."))
        elif logs.is_file() and logs.suffix.lower() != ".csv":
            errors.append(
                FieldError("logs", "Training logs are a .csv file or a TensorBoard folder.")
            )
    return errors


def options_for(form: IntakeForm) -> RunOptions:
    return RunOptions(
        device=form.device or "auto",
        symptom=form.symptom or None,
        reported_metric=parse_metric(form.reported_metric),
        logs=str(Path(form.logs).expanduser()) if form.logs.strip() else None,
    )


def symptom_text(symptom: str | None) -> str:
    try:
        return SYMPTOM_TEXT[Symptom(symptom or "")]
    except ValueError:
        return "no symptom given"


# --- facts the case can tell ------------------------------------------------------------------
@dataclass(frozen=True)
class SplitFacts:
    name: str
    size: int | None
    class_counts: tuple[int, ...] = ()  # per class, in CLASSES order; empty when unknown
    note: str = ""

    @property
    def imbalance(self) -> float | None:
        """Largest class count over the smallest (inf when a class is missing)."""
        if not self.class_counts:
            return None
        low = min(self.class_counts)
        return float("inf") if low == 0 else max(self.class_counts) / low


@dataclass(frozen=True)
class DatasetFacts:
    classes: tuple[str, ...]
    splits: tuple[SplitFacts, ...] = field(default_factory=tuple)


def _labels(dataset: object, limit: int) -> list[int] | None:
    for attr in ("targets", "labels", "y"):
        values = getattr(dataset, attr, None)
        if values is not None:
            try:
                return [int(v) for v in values]
            except (TypeError, ValueError):
                break
    size = len(dataset)  # type: ignore[arg-type]
    if size > limit:
        return None
    return [int(dataset[i][1]) for i in range(size)]  # type: ignore[index]


def dataset_facts(case_path: str | Path, limit: int = LABEL_SCAN_LIMIT) -> DatasetFacts:
    """Split sizes and class counts, read from the case. Loads the case (imports torch);
    raises CaseError when the case itself cannot load. A split that misbehaves gets a note."""
    from detective.core.case import load_case

    case = load_case(case_path)
    raw = case.raw_datasets() if case.has("raw_datasets") else None
    splits = []
    for name, dataset in sorted(case.datasets().items()):
        source = raw[name] if raw is not None and name in raw else dataset  # no transforms
        try:
            size = len(dataset)
        except Exception as e:  # user data: anything can come out
            splits.append(SplitFacts(name, None, note=f"len() raised {type(e).__name__}: {e}"))
            continue
        try:
            labels = _labels(source, limit)
        except Exception as e:
            splits.append(SplitFacts(name, size, note=f"labels unreadable ({type(e).__name__})"))
            continue
        if labels is None:
            splits.append(SplitFacts(name, size, note="too large to count labels item by item"))
            continue
        counts = Counter(labels)
        splits.append(
            SplitFacts(name, size, tuple(counts.get(i, 0) for i in range(case.num_classes)))
        )
    return DatasetFacts(case.classes, tuple(splits))


# --- starting ---------------------------------------------------------------------------------
def start(form: IntakeForm) -> Prepared:
    """Create the session from a valid form and keep the form in it. Raises CaseError,
    PlaybookError or SessionError with a message for the user."""
    from detective.core.session import SessionError
    from detective.ui.headless import prepare

    errors = validate(form)
    if errors:
        raise SessionError("; ".join(e.message for e in errors))
    prep = prepare(form.case_path, form.session_dir, options_for(form), None, existing=False)
    save_form(prep.session, form)
    return prep


def reopen(session_dir: str | Path) -> Prepared:
    """Load the case of an existing session for running checks (imports torch)."""
    from detective.core.session import Session
    from detective.ui.headless import prepare

    with Session.open(session_dir) as s:
        info = s.info
    return prepare(info.case_path, session_dir, info.options, info.playbook, existing=True)
