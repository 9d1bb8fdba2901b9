"""`detective experiment TARGET --set eval.…`: run one evaluation-side intervention by hand.

TARGET is a session folder (its case is re-used, the result goes to its experiment log) or a case
file; with a case file, `--session DIR` records it there (created when missing), otherwise the
result is printed only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console

from detective.ui.exitcodes import ExitCode


def cmd_intervention(args: argparse.Namespace, console: Console) -> ExitCode:
    from dataclasses import replace

    from detective.core.case import CaseError, load_case
    from detective.core.context import RunContext, RunOptions
    from detective.core.session import Session, SessionError
    from detective.core.sessionlock import open_writer
    from detective.ui import cliargs
    from detective.ui.headless import safe
    from detective.workflows.interventions import (
        InterventionError,
        parse_intervention,
        run_intervention,
        to_experiment,
    )

    if len(args.changes) != 1:
        console.print(
            f"[red]error:[/] {len(args.changes)} changes at once: an evaluation intervention is "
            "one --set eval.… per command, never mixed with training changes"
        )
        return ExitCode.USAGE
    try:
        it = parse_intervention(args.changes[0])
    except InterventionError as e:
        console.print(f"[red]error:[/] {safe(e)}")
        return ExitCode.USAGE
    problem = cliargs.device_problem(args.device)
    if problem:
        console.print(f"[red]error:[/] {safe(problem)}")
        return ExitCode.USAGE
    target = Path(args.session)
    is_case = target.suffix == ".py"
    session_dir = Path(args.record_to) if is_case and args.record_to else None
    if not is_case:
        session_dir = target
    try:
        case_path = target if is_case else None
        if is_case and not target.is_file():
            console.print(f"[red]error:[/] {safe(str(target))}: no such case file")
            return ExitCode.CASE_ERROR
        if session_dir is not None and is_case and not (session_dir / "session.sqlite").exists():
            from detective.core.playbook import DEFAULT_PLAYBOOK
            from detective.core.session import SessionInfo

            case = load_case(target)
            Session.create(
                session_dir,
                SessionInfo(
                    name=session_dir.name,
                    case_path=str(case.path),
                    case_hash=case.file_hash,
                    symptom=None,
                    playbook=DEFAULT_PLAYBOOK,
                    options=RunOptions(device=args.device or "auto"),
                    created_at=time.time(),
                ),
            ).close()
        session = (
            open_writer(session_dir, wait=args.wait, on_wait=lambda m: console.print(safe(m)))
            if session_dir is not None
            else None
        )
    except SessionError as e:
        console.print(f"[red]error:[/] {safe(e)}")
        return ExitCode.SESSION_ERROR
    except CaseError as e:
        console.print(f"[red]error:[/] {safe(e.message)}")
        return ExitCode.CASE_ERROR
    try:
        if session is not None:
            options = session.info.options
            case_path = case_path or Path(session.info.case_path)
        else:
            options = RunOptions()
        if args.device is not None:
            options = replace(options, device=args.device)
        try:
            case = load_case(case_path)
            # Interventions write no artifact; without a session nothing touches the disk.
            root = session.path if session is not None else Path(tempfile.gettempdir())
            ctx = RunContext(case, options, root / "artifacts", root / "cache")
            start = time.monotonic()
            console.print(f"intervention {safe(it.label)}: {safe(it.description)}")
            result = run_intervention(ctx, it, sample=args.sample)
        except InterventionError as e:
            console.print(f"[red]error:[/] {safe(e)}")
            return ExitCode.USAGE
        except CaseError as e:
            console.print(f"[red]error:[/] {safe(e.message)}")
            return ExitCode.CASE_ERROR
        except KeyboardInterrupt:
            console.print("interrupted: nothing recorded")
            return ExitCode.INTERRUPTED
        elapsed = time.monotonic() - start
        console.print(f"{safe(result.sentence)} [{elapsed:.1f} s]")
        for note in result.notes:
            console.print(f"  {safe(note)}")
        if session is None:
            console.print("not recorded: pass a session folder, or --session DIR with a case file")
        else:
            eid = session.add_experiment(to_experiment(result, elapsed))
            console.print(f"recorded as experiment #{eid} in {safe(str(session.path))}")
        return ExitCode.OK
    finally:
        if session is not None:
            session.close()
