"""`detective.investigate(...)`: the investigation from a notebook or a training script.

The same engine, playbook and session as `detective run`: the arguments become an in-memory case
(`Case.from_hooks`), the run writes a session folder, and the result is the typed report.
Running again with the same session and weights skips the checks already measured.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detective.core.case import Case, CaseError, EvalSettings, Normalization, TrainSettings
from detective.core.engine import RunStatus
from detective.core.ledger import LedgerEntry
from detective.core.report import Report, ReportFinding
from detective.ui.exitcodes import ExitCode

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Investigation:
    """What `investigate` returns: the report, where its session lives, how the run ended."""

    report: Report
    session_dir: Path
    status: RunStatus  # completed, or interrupted (Ctrl-C: finished findings are kept)
    crashed_checks: int  # checks that raised (their findings hold the traceback)

    @property
    def supported(self) -> tuple[LedgerEntry, ...]:
        """Hypotheses with strong evidence, strongest first."""
        return self.report.supported

    @property
    def hypotheses(self) -> tuple[LedgerEntry, ...]:
        return self.report.hypotheses

    @property
    def findings(self) -> tuple[ReportFinding, ...]:
        return self.report.findings

    def to_markdown(self) -> str:
        return self._render("md")

    def to_html(self) -> str:
        return self._render("html")

    def to_json(self) -> str:
        return self._render("json")

    def _render(self, fmt: str, output: Path | None = None) -> str:
        from detective.ui.export import Format, render

        return render(self.report, Format(fmt), self.session_dir / "artifacts", output)

    def save(self, path: str | Path) -> Path:
        """Write the report; the format follows the suffix (.md, .html or .json)."""
        out = Path(path)
        fmt = out.suffix.lstrip(".").lower()
        if fmt not in ("md", "html", "json"):
            raise ValueError(f"{out}: the suffix must be .md, .html or .json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self._render(fmt, out), encoding="utf-8")
        return out


def _normalization(value: Normalization | Mapping[str, Sequence[float]] | None) -> Any:
    if value is None or isinstance(value, Normalization):
        return value
    try:
        return Normalization(tuple(value["mean"]), tuple(value["std"]))
    except (KeyError, TypeError) as e:
        raise ValueError("normalization must be {'mean': [...], 'std': [...]}") from e


def _loss_hook(loss: Any) -> Callable[[], Any]:
    import torch

    if isinstance(loss, torch.nn.Module):
        return lambda: loss
    if callable(loss):
        return loss
    raise ValueError("loss must be a loss module or a function returning one")


def investigate(
    model: torch.nn.Module,
    *,
    train: Any,
    val: Any,
    classes: Sequence[str],
    optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer] | None = None,
    symptom: str | None = None,
    session: str | Path | None = None,
    test: Any = None,
    raw_train: Any = None,
    raw_val: Any = None,
    transforms: Mapping[str, Callable[[Any], Any]] | None = None,
    normalization: Normalization | Mapping[str, Sequence[float]] | None = None,
    loss: Any = None,
    fresh_model: Callable[[], torch.nn.Module] | None = None,
    train_settings: TrainSettings | None = None,
    eval_settings: EvalSettings | None = None,
    playbook: str | None = None,
    only: Sequence[str] | None = None,
    device: str = "auto",
    sample: int = 2000,
    reported_metric: float | None = None,
    logs: str | None = None,
    rerun: bool = False,
    verbose: bool = True,
    name: str | None = None,
) -> Investigation:
    """Investigate a trained `model` on its data and return the report.

    `train`/`val` (and `test`) are map-style datasets of (float tensor [C,H,W], int label) as
    the model sees them; `raw_train`/`raw_val` the same items as PIL images before transforms
    and `transforms` {"train": fn, "eval": fn} enable the pipeline checks that compare them.
    `optimizer(model)` is your training optimizer (default AdamW at train_settings.lr).
    The model is never modified: every check works on a copy. Raises CaseError when the
    model or data cannot be used (the message says why), ValueError for a bad argument.
    """
    from rich.console import Console

    from detective.core.context import RunOptions
    from detective.core.playbook import resolve_playbook
    from detective.core.registry import all_checks
    from detective.ui.cli import SYMPTOMS
    from detective.ui.headless import execute, open_session

    if symptom is not None and symptom not in SYMPTOMS:
        raise ValueError(f"unknown symptom {symptom!r}; one of {', '.join(SYMPTOMS)}")
    if transforms is not None and not {"train", "eval"} <= set(transforms):
        raise ValueError("transforms must be {'train': fn, 'eval': fn}")
    if (raw_train is None) != (raw_val is None):
        raise ValueError("give both raw_train and raw_val, or neither")
    case_name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name or type(model).__name__.lower())
    splits = {"train": train, "val": val, **({"test": test} if test is not None else {})}
    hooks: dict[str, Callable[..., Any]] = {
        "model": lambda: copy.deepcopy(model),  # checks move and switch it: never the caller's
        "datasets": lambda: dict(splits),
    }
    if raw_train is not None:
        hooks["raw_datasets"] = lambda: {"train": raw_train, "val": raw_val}
    if transforms is not None:
        hooks["transforms"] = lambda: dict(transforms)
    if optimizer is not None:
        hooks["optimizer"] = optimizer
    if loss is not None:
        hooks["loss"] = _loss_hook(loss)
    if fresh_model is not None:
        hooks["fresh_model"] = fresh_model
    case = Case.from_hooks(
        case_name,
        list(classes),
        hooks,
        normalization=_normalization(normalization),
        train=train_settings,
        evaluation=eval_settings,
    )
    options = RunOptions(
        device=device, sample=sample, symptom=symptom, reported_metric=reported_metric, logs=logs
    )
    only_list = list(only) if only else None
    if only_list:
        unknown = sorted(
            set(only_list) - set(resolve_playbook(playbook, set(all_checks())).check_ids)
        )
        if unknown:
            raise ValueError(f"only names checks not in the playbook: {', '.join(unknown)}")
    session_dir = Path(session) if session is not None else Path("sessions") / case_name
    prep = open_session(case, session_dir, options, playbook, existing=False, only=only_list)
    console = Console(highlight=False, quiet=not verbose)
    with prep.session:
        code = execute(prep, console, only=only_list, rerun=rerun)
        if code is ExitCode.CASE_ERROR:
            last = prep.session.findings()
            why = last[-1].finding.summary if last else "the case could not be used"
            raise CaseError(f"the run stopped: {why}")
        from detective.core.report import build_report

        report = build_report(prep.session)
    status = RunStatus.INTERRUPTED if code is ExitCode.INTERRUPTED else RunStatus.COMPLETED
    crashed = sum(f.finding.verdict.value == "error" for f in report.findings)
    return Investigation(report, session_dir, status, crashed)
