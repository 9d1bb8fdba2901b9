"""Headless runs: set up case, session and context, consume the engine's events on a console."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from detective.case import Case, CaseError, load_case
from detective.context import RunContext, RunOptions
from detective.engine import (
    CheckFinished,
    CheckLog,
    CheckProgress,
    CheckSkipped,
    CheckStarted,
    RunFinished,
    RunStarted,
    RunStatus,
    run_playbook,
)
from detective.exitcodes import ExitCode
from detective.export.text import strip_control
from detective.findings import Verdict
from detective.ledger import LedgerEntry, session_ledger
from detective.playbook import Playbook, PlaybookError, resolve_playbook
from detective.registry import all_checks
from detective.session import Session, SessionError, SessionInfo

_MARK = {
    Verdict.PASS: "[green]✓ pass[/]",
    Verdict.WARN: "[yellow]! warn[/]",
    Verdict.FAIL: "[red]✗ fail[/]",
    Verdict.NOT_APPLICABLE: "[dim]– n/a[/]",
    Verdict.ERROR: "[magenta]✗ error[/]",
}


def safe(text: object) -> str:
    """User-derived text for the console: no markup, no terminal escapes."""
    return escape(strip_control(str(text)))


@dataclass
class Prepared:
    session: Session
    case: Case
    playbook: Playbook
    ctx: RunContext


def prepare(
    case_path: str | Path,
    session_dir: str | Path,
    options: RunOptions,
    playbook_name: str | None,
    *,
    existing: bool,
    only: list[str] | tuple[str, ...] | None = None,
) -> Prepared:
    """Load the case and playbook, then create or open the session. Raises CaseError,
    PlaybookError or SessionError with a user-facing message."""
    case = load_case(case_path)
    playbook = resolve_playbook(playbook_name, set(all_checks()))
    session_dir = Path(session_dir)
    if existing or (session_dir / "session.sqlite").exists():
        session = Session.open(session_dir)
        info = session.info
        if Path(info.case_path).resolve() != case.path:
            session.close()
            raise SessionError(
                f"{session_dir} belongs to case {info.case_path}, not {case.path}; "
                "choose another --session"
            )
        session.update_info(
            case_hash=case.file_hash,
            options=options,
            symptom=options.symptom,
            playbook=str(playbook_name or info.playbook),
            only=tuple(only or ()),
        )
    else:
        session = Session.create(
            session_dir,
            SessionInfo(
                name=session_dir.name,
                case_path=str(case.path),
                case_hash=case.file_hash,
                symptom=options.symptom,
                playbook=str(playbook_name or playbook.name),
                options=options,
                created_at=time.time(),
                only=tuple(only or ()),
            ),
        )
    ctx = RunContext(case, options, session.artifacts_dir, session.cache_dir)
    return Prepared(session, case, playbook, ctx)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a run like Ctrl-C does: cleanly, nothing lost


def execute(
    prep: Prepared, console: Console, *, only: list[str] | None = None, rerun: bool = False
) -> ExitCode:
    """Run the playbook with a progress bar; Ctrl-C/SIGTERM cancel cleanly."""
    cancel = threading.Event()
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    status = RunStatus.COMPLETED
    errors = 0
    message = ""
    events = run_playbook(
        prep.session, prep.playbook, prep.ctx, cancel=cancel, only=only, rerun=rerun
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = None
            try:
                for event in events:
                    if isinstance(event, RunStarted):
                        n_done = len(event.already_done)
                        console.print(
                            f"Session [bold]{safe(prep.session.path)}[/] · "
                            f"{len(event.planned)} checks"
                            + (f" · {n_done} already done" if n_done else "")
                        )
                    elif isinstance(event, CheckStarted):
                        task = bar.add_task(
                            f"[{event.index + 1}/{event.total}] {safe(event.title)}", total=1.0
                        )
                    elif isinstance(event, CheckProgress) and task is not None:
                        bar.update(task, completed=event.fraction)
                    elif isinstance(event, CheckLog):
                        console.print(f"  [dim]{safe(event.check_id)}: {safe(event.message)}[/]")
                    elif isinstance(event, CheckFinished):
                        if task is not None:
                            bar.remove_task(task)
                            task = None
                        f = event.finding
                        console.print(
                            f"{_MARK[f.verdict]} [bold]{safe(f.check_id)}[/] "
                            f"[dim]({f.duration_s:.1f}s)[/] {safe(f.summary)}"
                        )
                    elif isinstance(event, CheckSkipped):
                        console.print(
                            f"[dim]  skip {safe(event.check_id)}: {safe(event.reason)}[/]"
                        )
                    elif isinstance(event, RunFinished):
                        status, errors, message = event.status, event.errors, event.message
            except KeyboardInterrupt:
                cancel.set()
                console.print("[yellow]Interrupted: stopping the running check…[/]")
                events.close()  # joins the worker; finished findings are already committed
                status = RunStatus.INTERRUPTED
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
    if status is RunStatus.INTERRUPTED:
        console.print(
            f"Interrupted{': ' + safe(message) if message else ''}. Finished findings are "
            f"saved; continue with [bold]detective resume {safe(prep.session.path)}[/]"
        )
        return ExitCode.INTERRUPTED
    if status is RunStatus.FAILED:
        console.print(f"[red]The run stopped: {safe(message)}[/]")
        return ExitCode.CASE_ERROR
    print_ledger(console, session_ledger(prep.session))
    return ExitCode.CHECK_ERROR if errors else ExitCode.OK


def print_ledger(console: Console, ledger: list[LedgerEntry], limit: int = 8) -> None:
    moved = [h for h in ledger if h.evidence or h.manual or h.user_defined]
    if not moved:
        console.print("No hypothesis has evidence yet.")
        return
    table = Table(title="Hypotheses: status, root causes first, then score", title_justify="left")
    for col in ("#", "hypothesis", "status", "score", "evidence"):
        table.add_column(col)
    colour = {"supported": "red", "inconclusive": "yellow", "refuted": "green", "open": "dim"}
    for n, h in enumerate(moved[:limit], 1):
        table.add_row(
            str(n),
            f"{safe(h.title)}\n[dim]{safe(h.hypothesis_id)}[/]",
            f"[{colour[h.status.value]}]{h.status.value}[/]" + (" (by hand)" if h.manual else ""),
            f"{h.score:+.2f}",
            safe("; ".join(f"{e.check_id}: {e.reason}" for e in h.evidence[:2])),
        )
    console.print(table)
    supported = [h for h in ledger if h.status.value == "supported"]
    if not supported:
        console.print("Nothing is supported: no check found evidence an expert would act on.")


__all__ = ["CaseError", "PlaybookError", "SessionError", "execute", "prepare", "print_ledger"]
