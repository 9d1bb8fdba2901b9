"""Headless runs: set up case, session and context, consume the engine's events on a console."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from detective.core.budget import Eta, duration
from detective.core.case import Case, CaseError, load_case
from detective.core.context import RunContext, RunOptions
from detective.core.engine import (
    BLOCKING_CHECKS,
    CheckFinished,
    CheckLog,
    CheckProgress,
    CheckSkipped,
    CheckStarted,
    HookWaiting,
    RunFinished,
    RunPlanned,
    RunStarted,
    RunStatus,
    run_playbook,
)
from detective.core.findings import Verdict
from detective.core.ledger import LedgerEntry, session_ledger
from detective.core.playbook import Playbook, PlaybookError, resolve_playbook
from detective.core.registry import all_checks
from detective.core.session import Session, SessionError, SessionInfo
from detective.core.sessionlock import lock_session
from detective.ui.exitcodes import ExitCode
from detective.ui.export.text import strip_control

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
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> Prepared:
    """Load the case and playbook, then create or open the session and take its one-writer lock
    (`wait`: until it is free). Raises CaseError, PlaybookError or SessionError (SessionBusy when
    another process runs it) with a user-facing message."""
    return open_session(
        load_case(case_path),
        session_dir,
        options,
        playbook_name,
        existing=existing,
        only=only,
        wait=wait,
        on_wait=on_wait,
    )


def _same_case(recorded: str, case: Case) -> bool:
    if case.in_memory:  # no file: the recorded "<python:NAME>" itself
        return recorded == str(case.path)
    return Path(recorded).resolve() == case.path


def open_session(
    case: Case,
    session_dir: str | Path,
    options: RunOptions,
    playbook_name: str | None,
    *,
    existing: bool,
    only: list[str] | tuple[str, ...] | None = None,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> Prepared:
    """Create or open the session for a loaded case (a file, or one built in Python) and take
    its one-writer lock."""
    playbook = resolve_playbook(playbook_name, set(all_checks()))
    session_dir = Path(session_dir)
    if existing or (session_dir / "session.sqlite").exists():
        Session.open(session_dir, readonly=True).close()  # damaged/newer: refused, untouched
    lock = lock_session(session_dir, wait=wait, on_wait=on_wait)
    try:
        session = _open_or_create(session_dir, case, options, playbook, playbook_name, only)
    except BaseException:
        lock.release()
        raise
    session.hold(lock)
    ctx = RunContext(case, options, session.artifacts_dir, session.cache_dir)
    return Prepared(session, case, playbook, ctx)


def _open_or_create(
    session_dir: Path,
    case: Case,
    options: RunOptions,
    playbook: Playbook,
    playbook_name: str | None,
    only: list[str] | tuple[str, ...] | None,
) -> Session:
    if (session_dir / "session.sqlite").exists():
        session = Session.open(session_dir)
        info = session.info
        if not _same_case(info.case_path, case):
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
        return session
    return Session.create(
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
    errors = user_errors = 0
    message = blocked = broken = ""
    events = run_playbook(
        prep.session, prep.playbook, prep.ctx, cancel=cancel, only=only, rerun=rerun
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[eta]}"),
    )
    eta: Eta | None = None
    skip: tuple[str, ...] = ()

    def eta_text() -> str:
        return f"[dim]≈ {duration(eta.seconds_left())} left[/]" if eta is not None else ""

    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = None
            try:
                for event in events:
                    if isinstance(event, RunStarted):
                        n_done = len(event.already_done)
                        console.print(
                            f"Session [bold]{safe(prep.session.path)}[/] · "
                            + (f"device {safe(event.device)} · " if event.device else "")
                            + f"{len(event.planned)} checks"
                            + (f" · {n_done} already done" if n_done else "")
                        )
                        skip = event.already_done
                    elif isinstance(event, RunPlanned):
                        eta = Eta(event.plan, skip)
                        console.print(f"Plan: {safe(event.plan.describe())}")
                        if event.plan.shortened:
                            console.print(
                                "  [yellow]shortened to fit the budget:[/] "
                                + safe("; ".join(s.describe() for s in event.plan.shortened))
                            )
                    elif isinstance(event, CheckStarted):
                        if eta is not None:
                            eta.started(event.check_id)
                        task = bar.add_task(
                            f"[{event.index + 1}/{event.total}] {safe(event.title)}",
                            total=1.0,
                            eta=eta_text(),
                        )
                    elif isinstance(event, CheckProgress) and task is not None:
                        if eta is not None:
                            eta.progressed(event.check_id, event.fraction)
                        bar.update(task, completed=event.fraction, eta=eta_text())
                    elif isinstance(event, CheckLog):
                        console.print(f"  [dim]{safe(event.check_id)}: {safe(event.message)}[/]")
                    elif isinstance(event, CheckFinished):
                        if eta is not None:
                            eta.finished(event.check_id)
                        if task is not None:
                            bar.remove_task(task)
                            task = None
                        f = event.finding
                        if event.check_id in BLOCKING_CHECKS and f.verdict is Verdict.ERROR:
                            # A hook broke the gate (a checkpoint that does not fit, data that
                            # cannot be built): the case itself is unusable, exit 4.
                            broken = f.summary
                        console.print(
                            f"{_MARK[f.verdict]} [bold]{safe(f.check_id)}[/] "
                            f"[dim]({f.duration_s:.1f}s)[/] {safe(f.summary)}"
                        )
                    elif isinstance(event, CheckSkipped):
                        console.print(
                            f"[dim]  skip {safe(event.check_id)}: {safe(event.reason)}[/]"
                        )
                    elif isinstance(event, HookWaiting):
                        during = f" (in {safe(event.check_id)})" if event.check_id else ""
                        console.print(
                            f"[yellow]  waiting for your {safe(event.hook)}() hook…[/]{during} "
                            "[dim]Ctrl-C stops; --hook-timeout bounds the wait[/]"
                        )
                    elif isinstance(event, RunFinished):
                        status, errors, message = event.status, event.errors, event.message
                        user_errors, blocked = event.user_errors, event.blocked
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
    if status is RunStatus.FAILED or broken:
        console.print(f"[red]The run stopped: {safe(message or broken)}[/]")
        return ExitCode.CASE_ERROR
    if blocked:  # the case broke its contract: no check could measure anything
        console.print(f"[red]Nothing could be measured: {safe(blocked)}[/]")
        return ExitCode.CASE_ERROR
    print_ledger(console, session_ledger(prep.session))
    if user_errors:
        console.print(
            f"[red]{user_errors} check(s) stopped on an error in your case's code[/] "
            "(the findings say where)"
        )
        return ExitCode.CASE_ERROR
    return ExitCode.CHECK_ERROR if errors else ExitCode.OK


def print_ledger(console: Console, ledger: list[LedgerEntry], limit: int = 8) -> None:
    moved = [h for h in ledger if h.evidence or h.manual or h.user_defined]
    if not moved:
        console.print("No hypothesis has evidence yet.")
        return
    table = Table(
        title="Hypotheses: causes proven by intervention first (by share of the gap recovered)",
        title_justify="left",
    )
    for col in ("#", "hypothesis", "status", "score", "evidence"):
        table.add_column(col)
    colour = {"supported": "red", "inconclusive": "yellow", "refuted": "green", "open": "dim"}
    for n, h in enumerate(moved[:limit], 1):
        table.add_row(
            str(n),
            f"{safe(h.title)}\n[dim]{safe(h.hypothesis_id)}[/]",
            f"[{colour[h.status.value]}]{h.status.value}[/]" + (" (by hand)" if h.manual else ""),
            f"{h.score:+.2f}",
            safe(_evidence_text(h)),
        )
    console.print(table)
    supported = [h for h in ledger if h.status.value == "supported"]
    if not supported:
        console.print(
            "Nothing is supported: no intervention on a suspected cause moved the metric."
        )
    for h in supported[:3]:
        if h.proof is not None:
            console.print(
                f"[bold]{safe(h.hypothesis_id)}[/]: {safe(h.proof.sentence)} "
                f"[dim](replay: detective experiment CASE --set {safe(h.proof.label)})[/]"
            )


def _evidence_text(h: LedgerEntry) -> str:
    if h.status.value == "supported" and h.proof is not None:
        text = "intervention: " + h.proof.sentence
    else:
        others = [e for e in h.evidence if e.check_id != "interventions"]
        text = "; ".join(f"{e.check_id}: {e.reason}" for e in others[:2])
        tried = [o for o in h.interventions if o.effect.value != "recovers"]
        if tried:
            text += f"; intervention {tried[0].label}: {tried[0].effect.value}"
    if h.explained_by:
        text += f" (a description, explained by {h.explained_by})"
    return text


__all__ = [
    "CaseError",
    "PlaybookError",
    "SessionError",
    "execute",
    "open_session",
    "prepare",
    "print_ledger",
]
