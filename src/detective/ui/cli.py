"""The `detective` command. Heavy modules (torch, the engine, Textual) load only when needed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detective import __version__
from detective.core.budget import DEFAULT_FLOOR_S
from detective.ui import cliargs
from detective.ui.exitcodes import ExitCode

SYMPTOMS = (
    "low_train_acc",
    "train_high_val_low",
    "both_low",
    "good_offline_bad_in_production",
    "one_class_bad",
)

EPILOG = """exit codes: 0 ok · 1 hypotheses supported (with --strict) · 2 usage error ·
3 a check crashed (or a bug in detective: see the log it names) · 4 the case failed ·
5 session error (damaged, read-only, in use) · 6 doctor found a problem ·
130 interrupted (resume continues)"""


def _writer_options(p: argparse.ArgumentParser, default_timeout: float | None) -> None:
    """Options of the commands that run the case and write to a session."""
    p.add_argument(
        "--wait",
        action="store_true",
        help="if another process is running this session, wait for it (default: exit 5)",
    )
    p.add_argument(
        "--hook-timeout",
        type=cliargs.positive_seconds,
        default=default_timeout,
        metavar="SECONDS",
        help="end the run (exit 4) when one of your case's hooks has not returned after this "
        "long (default 600; your train() hook is not timed)",
    )


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        type=cliargs.device,
        default="auto",
        help="auto (default), cpu, cuda or cuda:N",
    )
    p.add_argument(
        "--sample",
        type=cliargs.positive_int,
        default=2000,
        help="items a streaming check looks at, at most (default 2000; at least 1)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--workers",
        type=cliargs.workers,
        default=None,
        metavar="N",
        help="DataLoader processes decoding your data (default: 0 on CPU, where they would "
        "compete with the model for cores; min(8, CPUs - 1) on CUDA)",
    )
    p.add_argument(
        "--reported-metric",
        type=cliargs.reported_metric,
        default=None,
        help="the accuracy you see on the eval split, in [0, 1] (87 or 87%% is read as a "
        "percentage, with a notice)",
    )
    p.add_argument(
        "--logs", default=None, help="your training logs: a CSV file or a TensorBoard folder"
    )
    p.add_argument("--llm", default=None, help="a GGUF model for failure-cluster summaries")
    p.add_argument(
        "--llm-gpu-layers",
        type=int,
        default=None,
        metavar="N",
        help="model layers llama.cpp offloads to the GPU (-1: all; default all on a CUDA run, "
        "0 on CPU)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when any hypothesis is supported")
    _writer_options(p, 600.0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="detective",
        description="A hypothesis-driven investigation of why a vision model underperforms.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"detective {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a playbook on a case", epilog=EPILOG)
    run.add_argument("case", help="path to the case file (.py)")
    run.add_argument(
        "--session", default=None, help="session folder (default sessions/<case name>)"
    )
    run.add_argument("--symptom", choices=SYMPTOMS, default=None, help="what you observe")
    run.add_argument("--playbook", default=None, help="a playbook name or .toml path")
    run.add_argument("--only", default=None, help="comma-separated check ids to run")
    run.add_argument("--rerun", action="store_true", help="run checks again even if already done")
    run.add_argument(
        "--headless", action="store_true", help="no UI (the default until the TUI opens)"
    )
    run.add_argument(
        "--budget",
        type=cliargs.budget,
        default=None,
        metavar="MIN",
        help="minutes of measured work: shorten sample sizes and short runs to fit, cheapest "
        "evidence first (the plan says what was shortened). Default: one training epoch of "
        f"your recipe (timed before the first check), at least {DEFAULT_FLOOR_S / 60:g} min; "
        "none (or 0): no bound",
    )
    _run_options(run)

    resume = sub.add_parser("resume", help="continue a session's playbook where it stopped")
    resume.add_argument("session")
    resume.add_argument("--device", type=cliargs.device, default=None)
    _writer_options(resume, None)

    demo = sub.add_parser("demo", help="run the built-in demo investigation (digits, CPU, <60 s)")
    demo.add_argument("--session", default="sessions/demo")
    demo.add_argument("--device", type=cliargs.device, default="auto")

    export = sub.add_parser("export", help="write a session's findings report")
    export.add_argument("session")
    export.add_argument("--format", choices=("md", "html", "json"), default="md")
    export.add_argument("-o", "--output", default=None, help="file to write (default: stdout)")

    doctor = sub.add_parser(
        "doctor",
        help="check this machine: Python, torch and GPUs, AMP, llama.cpp, the terminal",
        epilog=EPILOG,
    )
    doctor.add_argument(
        "--llm", default=None, help="the GGUF to try (default: the CI model package, if installed)"
    )

    checks = sub.add_parser("checks", help="list every check")
    checks.add_argument("--json", action="store_true")

    rejudge = sub.add_parser(
        "rejudge", help="re-judge stored measurements with the current thresholds (no model needed)"
    )
    rejudge.add_argument("session")
    rejudge.add_argument("--wait", action="store_true", help="wait for a run of this session")
    rejudge.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="CHECK.KEY=VALUE",
        help="a threshold for this re-judgement, e.g. label_issues.strong_rate=0.1 (repeatable; "
        "over the playbook's [checks.<id>.thresholds])",
    )

    ledger = sub.add_parser("ledger", help="print a session's ranked hypotheses")
    ledger.add_argument("session")

    openp = sub.add_parser("open", help="open a session in the terminal UI")
    openp.add_argument("session", nargs="?")

    serve = sub.add_parser("serve", help="the terminal UI in a browser (textual-serve)")
    serve.add_argument("session", nargs="?")
    serve.add_argument("--host", default="localhost", help="default localhost: not exposed")
    serve.add_argument("--port", type=int, default=8000)

    from detective.ui.experiment_cli import add_commands  # experiment, compare

    add_commands(sub)
    _add_init(sub)
    _add_collect(sub)
    return parser


def _add_collect(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`detective collect` (the sharded inference pass, torchrun-aware): its own module."""
    from detective.ui.collect_cli import add_command

    add_command(sub)


def _add_init(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`detective init` (bring your own model): its own module, registered here."""
    from detective.ui.init_cli import add_command

    add_command(sub)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(args, parser)
    except KeyboardInterrupt:  # outside a run's own handling, e.g. while a case file imports
        print("interrupted (Ctrl-C): stopped", file=sys.stderr)  # noqa: T201
        return ExitCode.INTERRUPTED
    except Exception as e:  # our bug: exit 3 and a log file, never a traceback with exit 1
        from detective.ui.crash import report_crash

        command = sys.argv[1:] if argv is None else list(argv)
        report_crash(e, command, getattr(args, "session", None))
        return ExitCode.CHECK_ERROR


def _dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.command is None:
        return _open_tui(None, parser)
    handler = {
        "run": cmd_run,
        "resume": cmd_resume,
        "demo": cmd_demo,
        "export": cmd_export,
        "checks": cmd_checks,
        "ledger": cmd_ledger,
        "rejudge": cmd_rejudge,
        "doctor": cmd_doctor,
    }.get(args.command, getattr(args, "handler", None))
    if args.command == "serve":
        from detective.ui.tui.serve import serve

        return serve(args.session, args.host, args.port)
    if handler is None:
        return _open_tui(args.session, parser)
    return int(handler(args))


def _console():  # noqa: ANN202
    from rich.console import Console

    return Console(highlight=False)


def _err(message: str, code: ExitCode) -> ExitCode:
    from detective.ui.headless import safe

    _console().print(f"[red]error:[/] {safe(message)}")
    return code


def _options(args: argparse.Namespace, symptom: str | None):  # noqa: ANN202
    from detective.core.context import RunOptions, default_workers

    return RunOptions(
        device=args.device,
        sample=args.sample,
        seed=args.seed,
        symptom=symptom,
        reported_metric=args.reported_metric,
        logs=args.logs,
        llm=args.llm,
        llm_gpu_layers=args.llm_gpu_layers,
        hook_timeout=args.hook_timeout,
        budget_min=getattr(args, "budget", None),
        num_workers=default_workers(args.device) if args.workers is None else args.workers,
    )


def _start(
    case: str,
    session: str,
    options,
    playbook: str | None,
    existing: bool,  # noqa: ANN001
    only: list[str] | None = None,
    rerun: bool = False,
    strict: bool = False,
    wait: bool = False,
) -> ExitCode:
    from detective.core.case import CaseError
    from detective.core.playbook import PlaybookError
    from detective.core.session import SessionError
    from detective.ui.headless import execute, prepare

    console = _console()
    try:
        from detective.analysis.torchutil import DeviceError, resolve_device

        resolve_device(options.device)
    except DeviceError as e:
        return _err(str(e), ExitCode.USAGE)
    try:
        prep = prepare(
            case,
            session,
            options,
            playbook,
            existing=existing,
            only=only,
            wait=wait,
            on_wait=lambda m: console.print(f"[yellow]{_safe(m)}[/]"),
        )
    except KeyboardInterrupt:
        return _err("interrupted while loading the case; nothing was run", ExitCode.INTERRUPTED)
    except CaseError as e:
        if e.details:
            console.print(e.details, markup=False, highlight=False)
        return _err(e.message, ExitCode.CASE_ERROR)
    except PlaybookError as e:
        return _err(str(e), ExitCode.USAGE)
    except SessionError as e:
        return _err(str(e), ExitCode.SESSION_ERROR)
    if only:
        unknown = sorted(set(only) - set(prep.playbook.check_ids))
        if unknown:
            return _err(
                f"--only names checks not in the playbook: {', '.join(unknown)}", ExitCode.USAGE
            )
    with prep.session:
        code = execute(prep, console, only=only, rerun=rerun)
        if code is ExitCode.OK and strict:
            from detective.core.ledger import session_ledger

            if any(h.status.value == "supported" for h in session_ledger(prep.session)):
                code = ExitCode.SUPPORTED
    return code


def cmd_run(args: argparse.Namespace) -> ExitCode:
    session = args.session or str(Path("sessions") / Path(args.case).stem)
    only = [c.strip() for c in args.only.split(",")] if args.only else None
    return _start(
        args.case,
        session,
        _options(args, args.symptom),
        args.playbook,
        existing=False,
        only=only,
        rerun=args.rerun,
        strict=args.strict,
        wait=args.wait,
    )


def cmd_resume(args: argparse.Namespace) -> ExitCode:
    from dataclasses import replace

    from detective.core.session import Session, SessionError, ensure_writable

    try:
        with Session.open(args.session, readonly=True) as s:
            info = s.info
        ensure_writable(args.session)  # refuse now, before loading the case
    except SessionError as e:
        return _err(str(e), ExitCode.SESSION_ERROR)
    options = info.options if args.device is None else replace(info.options, device=args.device)
    if args.hook_timeout is not None:
        options = replace(options, hook_timeout=args.hook_timeout)
    return _start(
        info.case_path,
        args.session,
        options,
        info.playbook,
        existing=True,
        only=list(info.only) or None,
        wait=args.wait,
    )


def cmd_demo(args: argparse.Namespace) -> ExitCode:
    import shutil

    from detective.casekit.demo import DEMO_CASE, DEMO_SYMPTOM
    from detective.core.context import RunOptions
    from detective.core.session import Session, SessionError

    session_dir = Path(args.session)
    if (session_dir / "session.sqlite").exists():
        # Start the demo afresh, but only ever delete a previous *demo* session.
        try:
            with Session.open(session_dir, readonly=True) as s:
                is_demo = Path(s.info.case_path).resolve() == DEMO_CASE.resolve()
        except SessionError:
            is_demo = False
        if not is_demo:
            return _err(
                f"{session_dir} holds another session; pass --session", ExitCode.SESSION_ERROR
            )
        from detective.core.sessionlock import lock_session

        try:  # never delete a demo that another process is running
            with lock_session(session_dir):
                shutil.rmtree(session_dir)
        except SessionError as e:
            return _err(str(e), ExitCode.SESSION_ERROR)
    options = RunOptions(device=args.device, symptom=DEMO_SYMPTOM)
    console = _console()
    console.print(
        "[bold]detective demo[/]: a small CNN on scikit-learn's handwritten digits, "
        "with one planted flaw. Symptom: train accuracy high, validation low."
    )
    code = _start(str(DEMO_CASE), str(session_dir), options, None, existing=False)
    if code in (ExitCode.OK, ExitCode.CHECK_ERROR):
        for fmt in ("md", "html"):
            _write_export(session_dir, fmt, session_dir / f"report.{fmt}")
        console.print(
            f"Session: [bold]{session_dir}[/]  Report: [bold]{session_dir / 'report.md'}[/] "
            f"and [bold]{session_dir / 'report.html'}[/]"
        )
    return code


def _write_export(session_dir: Path, fmt: str, output: Path | None) -> str:
    from detective.core.report import build_report
    from detective.core.session import Session
    from detective.ui.export import Format, render

    with Session.open(session_dir, readonly=True) as s:
        text = render(build_report(s), Format(fmt), s.artifacts_dir, output)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(output)
    return text


def cmd_export(args: argparse.Namespace) -> ExitCode:
    from detective.core.session import SessionError

    output = Path(args.output) if args.output else None
    try:
        text = _write_export(Path(args.session), args.format, output)
    except SessionError as e:
        return _err(str(e), ExitCode.SESSION_ERROR)
    if output is None:
        sys.stdout.write(text)
    else:
        _console().print(f"wrote {output}")
    return ExitCode.OK


WIDE_CHECKS = 140  # below this many columns `detective checks` lists blocks, not a table


def cmd_checks(args: argparse.Namespace) -> ExitCode:
    from detective.core.registry import all_checks

    checks = sorted(
        all_checks().values(), key=lambda c: (list(_stage_order()).index(c.stage), c.id)
    )
    if args.json:
        import json

        sys.stdout.write(
            json.dumps(
                [
                    {
                        "id": c.id,
                        "title": c.title,
                        "stage": c.stage.value,
                        "needs": list(c.needs),
                        "hypotheses": list(c.hypotheses),
                        "description": c.description,
                    }
                    for c in checks
                ],
                indent=2,
            )
            + "\n"
        )
        return ExitCode.OK
    import textwrap

    from rich.markup import escape
    from rich.table import Table

    console = _console()

    def indent(text: str) -> str:  # wrapped at spaces only: an id is never cut
        return escape(
            textwrap.fill(
                text,
                console.width - 1,
                initial_indent="  ",
                subsequent_indent="  ",
                break_long_words=False,
                break_on_hyphens=False,
            )
        )

    if console.width < WIDE_CHECKS:
        # Narrow (80×24 over SSH): one block per check; ids are never cut, lists wrap at commas.
        for c in checks:
            console.print(
                f"[bold]{escape(c.id)}[/] [dim]({c.stage.value} · needs "
                f"{escape(', '.join(c.needs) or 'nothing')})[/]"
            )
            if c.hypotheses:
                console.print(indent("hypotheses: " + ", ".join(c.hypotheses)), soft_wrap=True)
            console.print(indent(c.description) + "\n", soft_wrap=True)
        return ExitCode.OK
    table = Table("id", "stage", "needs", "hypotheses", "what it does", show_lines=True)
    for c in checks:
        table.add_row(
            *(
                escape(v)
                for v in (
                    c.id,
                    c.stage.value,
                    "\n".join(c.needs),
                    "\n".join(c.hypotheses),
                    c.description,
                )
            )
        )
    console.print(table)
    return ExitCode.OK


def _stage_order():  # noqa: ANN202
    from detective.core.hypotheses import Stage

    return Stage


def cmd_ledger(args: argparse.Namespace) -> ExitCode:
    from detective.core.ledger import session_ledger
    from detective.core.session import Session, SessionError
    from detective.ui.headless import print_ledger

    try:
        with Session.open(args.session, readonly=True) as s:
            print_ledger(_console(), session_ledger(s), limit=50)
    except SessionError as e:
        return _err(str(e), ExitCode.SESSION_ERROR)
    return ExitCode.OK


def cmd_rejudge(args: argparse.Namespace) -> ExitCode:
    from detective.core.ledger import session_ledger
    from detective.core.overrides import OverrideError
    from detective.core.session import SessionError
    from detective.core.sessionlock import open_writer
    from detective.ui.headless import print_ledger
    from detective.workflows.rejudge import parse_overrides, rejudge, session_playbook

    console = _console()
    try:
        overrides = parse_overrides(args.overrides)
    except OverrideError as e:
        return _err(str(e), ExitCode.USAGE)
    try:
        on_wait = lambda m: console.print(f"[yellow]{_safe(m)}[/]")  # noqa: E731
        with open_writer(args.session, wait=args.wait, on_wait=on_wait) as s:
            results = rejudge(s, overrides, session_playbook(s))
            for r in results:
                mark = f"{r.before.value} → {r.after.value}" if r.changed else "unchanged"
                mark = f"not re-judged: {r.skipped}" if r.skipped else mark
                console.print(f"{r.check_id}: {mark}", markup=False)
            print_ledger(console, session_ledger(s))
    except SessionError as e:
        return _err(str(e), ExitCode.SESSION_ERROR)
    return ExitCode.OK


def _safe(text: object) -> str:
    from detective.ui.headless import safe

    return safe(text)


def _open_tui(session: str | None, parser: argparse.ArgumentParser) -> int:
    try:
        from detective.ui.tui.app import run_app  # type: ignore[import-not-found]
    except ImportError:
        parser.print_help()
        return ExitCode.OK
    return int(run_app(session))


def cmd_doctor(args: argparse.Namespace) -> ExitCode:
    from rich.markup import escape

    from detective.ui.doctor import Status, diagnose

    console = _console()
    style = {Status.OK: "green", Status.PROBLEM: "red", Status.SKIPPED: "yellow"}
    problems = 0
    for line in diagnose(args.llm):
        problems += line.status is Status.PROBLEM
        fix = f" → {escape(line.fix)}" if line.fix else ""
        console.print(
            f"[{style[line.status]}]{line.status.value:<8}[/] {line.topic:<14} "
            f"{escape(line.detail)}{fix}",
            soft_wrap=True,
        )
    if problems:
        console.print(f"{problems} problem(s): see the → fixes above")
        return ExitCode.ENVIRONMENT
    return ExitCode.OK


# Last in the file, and through the imported module: run as `python -m detective.ui.cli` this file
# is `__main__`, a second copy of the module; delegating makes it the same module and entry point
# as `python -m detective` and the `detective` script (and nothing defined below a guard is missed).
if __name__ == "__main__":
    from detective.ui.cli import main as _entry_point

    raise SystemExit(_entry_point())
