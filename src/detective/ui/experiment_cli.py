"""`detective experiment` and `detective compare`: headless entries for the experiment log and
model comparison. Kept out of cli.py so the shared parser only gains one registration call."""

from __future__ import annotations

import argparse
from typing import Any

from detective.ui import cliargs
from detective.ui.exitcodes import ExitCode


def add_commands(sub: Any) -> None:
    exp = sub.add_parser(
        "experiment",
        help="change one thing in a session's case recipe, re-train briefly, record the delta",
    )
    exp.add_argument(
        "session",
        help="session folder (its case is re-used); for an eval.… intervention also a case file",
    )
    exp.add_argument(
        "--set",
        dest="changes",
        action="append",
        required=True,
        metavar="TARGET.KEY=VALUE",
        help="the change, e.g. train.lr=1e-3, train.lr=x10, train.lr=/10, train.epochs=x2, "
        "train.weight_decay=0.05, train.clip=1.0, train.class_weight=balanced, model.width=64, "
        "model.width=x2, model.dropout=0.5, model.freeze=backbone, model.unfreeze=all, "
        "model.activation=relu|leaky_relu, model.init=default|he, aug.shift=1, "
        "transform.train=deterministic, data.normalize=measured, data.drop=label_issues, "
        "hook.optimizer=default|all; or one evaluation-side intervention (no retraining): "
        "eval.transform=train, eval.channels=swap, eval.normalize=measured, eval.labels=remap, "
        "eval.mode=train, eval.drop=near_twins, eval.drop=corrupt",
    )
    exp.add_argument(
        "--session",
        dest="record_to",
        default=None,
        metavar="DIR",
        help="with a case file and an eval.… intervention: record it in this session "
        "(created when missing)",
    )
    exp.add_argument("--name", default=None)
    exp.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    exp.add_argument("--metric", default="val_acc", choices=("val_acc", "gap", "val_loss"))
    exp.add_argument(
        "--epochs", type=cliargs.positive_int, default=5, help="at most this many epochs per run"
    )
    exp.add_argument(
        "--sample",
        type=cliargs.positive_int,
        default=1000,
        help="train/val images per run, at most",
    )
    exp.add_argument(
        "--max-seconds",
        type=cliargs.positive_seconds,
        default=600.0,
        help="wall-time cap, all runs",
    )
    exp.add_argument("--device", type=cliargs.device, default=None)
    exp.add_argument(
        "--wait", action="store_true", help="wait for another process running this session"
    )
    exp.add_argument(
        "--allow-confounded",
        action="store_true",
        help="accept several --set at once (recorded as confounded)",
    )
    exp.set_defaults(handler=cmd_experiment)

    cmp = sub.add_parser("compare", help="compare two cases' models on the same val set")
    cmp.add_argument("case_a")
    cmp.add_argument("case_b")
    cmp.add_argument("--sample", type=cliargs.positive_int, default=2000)
    cmp.add_argument("--device", type=cliargs.device, default="auto")
    cmp.add_argument("-o", "--output", default=None, help="folder for the galleries (PNG)")
    cmp.set_defaults(handler=cmd_compare)


def cmd_experiment(args: argparse.Namespace) -> ExitCode:
    from dataclasses import replace

    from rich.console import Console

    from detective.core.case import CaseError, load_case
    from detective.core.context import RunContext
    from detective.core.progress import Progress
    from detective.core.session import SessionError
    from detective.core.sessionlock import open_writer
    from detective.ui.headless import safe
    from detective.workflows.experiments import ExperimentError, parse_change, run_experiment

    console = Console(highlight=False)
    if any(c.strip().startswith("eval.") for c in args.changes):
        from detective.ui.intervention_cli import cmd_intervention

        return cmd_intervention(args, console)
    if args.record_to is not None:
        console.print("[red]error:[/] --session is for an eval.… intervention on a case file")
        return ExitCode.USAGE
    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
        changes = [parse_change(c) for c in args.changes]
    except (ValueError, ExperimentError) as e:
        console.print(f"[red]error:[/] {safe(e)}")
        return ExitCode.USAGE
    problem = cliargs.device_problem(args.device)
    if problem:
        console.print(f"[red]error:[/] {safe(problem)}")
        return ExitCode.USAGE
    try:
        session = open_writer(
            args.session, wait=args.wait, on_wait=lambda m: console.print(safe(m))
        )
    except SessionError as e:
        console.print(f"[red]error:[/] {safe(e)}")
        return ExitCode.SESSION_ERROR
    with session:
        info = session.info
        options = info.options if args.device is None else replace(info.options, device=args.device)
        try:
            case = load_case(info.case_path)
        except CaseError as e:
            console.print(f"[red]error:[/] {safe(e.message)}")
            return ExitCode.CASE_ERROR
        ctx = RunContext(case, options, session.artifacts_dir, session.cache_dir)
        last = [-1]

        def on_update(u) -> None:  # noqa: ANN001
            pct = int(u.fraction * 100)
            if pct // 10 != last[0] // 10:
                last[0] = pct
                console.print(f"  {pct:3d} %  {u.elapsed_s:6.1f} s", highlight=False)

        progress = Progress(on_update, on_log=lambda m: console.print(safe(m)))
        try:
            run = run_experiment(
                ctx,
                changes,
                name=args.name,
                seeds=seeds,
                metric=args.metric,
                max_epochs=args.epochs,
                train_samples=args.sample,
                val_samples=args.sample,
                max_seconds=args.max_seconds,
                allow_confounded=args.allow_confounded,
                progress=progress,
            )
        except ExperimentError as e:
            console.print(f"[red]error:[/] {safe(e)}")
            return ExitCode.USAGE
        except CaseError as e:
            console.print(f"[red]error:[/] {safe(e.message)}")
            return ExitCode.CASE_ERROR
        except KeyboardInterrupt:
            console.print("interrupted: nothing recorded")
            return ExitCode.INTERRUPTED
        e = run.experiment
        eid = session.add_experiment(e)
        spread = f" (±{e.after_spread:.4f} over seeds)" if e.after_spread is not None else ""
        console.print(
            f"experiment #{eid} {safe(e.name)}: {e.metric} {e.before:.4f} → {e.after:.4f}"
            f"{spread}, Δ {e.delta:+.4f}: {safe(e.verdict)}"
            + (" [confounded]" if e.confounded else "")
        )
    return ExitCode.OK


def cmd_compare(args: argparse.Namespace) -> ExitCode:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from detective.core.case import CaseError
    from detective.ui.headless import safe
    from detective.workflows.compare import CompareError, compare_cases

    console = Console(highlight=False)
    problem = cliargs.device_problem(args.device)
    if problem:
        console.print(f"[red]error:[/] {safe(problem)}")
        return ExitCode.USAGE
    out = Path(args.output) if args.output else None
    try:
        c = compare_cases(args.case_a, args.case_b, sample=args.sample, device=args.device,
                          out_dir=out)
    except (CaseError, CompareError) as e:
        console.print(f"[red]error:[/] {safe(getattr(e, 'message', e))}")
        return ExitCode.CASE_ERROR
    console.print(safe(c.summary))
    t = Table("class", "n", "acc A", "acc B", "Δ")
    for r in c.per_class:
        t.add_row(safe(r.group), str(r.n), f"{r.acc_a:.3f}", f"{r.acc_b:.3f}",
                  f"{r.acc_b - r.acc_a:+.3f}")
    console.print(t)
    if c.per_slice:
        s = Table("slice", "n", "acc A", "acc B", "Δ")
        for r in c.per_slice:
            s.add_row(safe(r.group), str(r.n), f"{r.acc_a:.3f}", f"{r.acc_b:.3f}",
                      f"{r.acc_b - r.acc_a:+.3f}")
        console.print(s)
    for g in c.galleries:
        console.print(f"gallery: {safe(g)}")
    return ExitCode.OK
