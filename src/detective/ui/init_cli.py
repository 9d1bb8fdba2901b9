"""`detective init`: write a case file from an image folder or CSVs, an architecture and a
checkpoint, check it loads, and say what the user must confirm. Exit 2 on any problem with the
inputs (nothing is written then), 4 if the written case breaks its contract."""

from __future__ import annotations

import argparse
from pathlib import Path

from detective.ui.exitcodes import ExitCode


def add_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "init",
        help="write a case file for your data, architecture and checkpoint",
        description="Write a readable case file (the documented hooks, guesses marked CHECK "
        "THIS) for an ImageFolder tree or CSV files, a torchvision or timm architecture and "
        "your checkpoint; then load it and run the case contract.",
    )
    data = p.add_argument_group("data (an image folder tree, or CSV files of path,label)")
    data.add_argument("--data", type=Path, help="folder with train/ val/ [test/] of class folders")
    data.add_argument("--csv", type=Path, help="one CSV with path,label,split columns")
    data.add_argument("--train-csv", type=Path)
    data.add_argument("--val-csv", type=Path)
    data.add_argument("--test-csv", type=Path)
    data.add_argument(
        "--root", type=Path, help="where relative CSV paths start (default: the CSV's folder)"
    )
    p.add_argument(
        "--arch",
        required=True,
        help="torchvision model name (resnet18, efficientnet_b0…) or timm:NAME",
    )
    p.add_argument(
        "--weights", type=Path, help="your checkpoint: state_dict .pt/.pth or .safetensors"
    )
    p.add_argument(
        "--image-size", type=int, default=224, help="the model's input size (default 224)"
    )
    p.add_argument(
        "--normalization",
        choices=("measured", "imagenet", "none"),
        default="measured",
        help="measured on a sample of train images (default), ImageNet's, or none",
    )
    p.add_argument("--optimizer", choices=("adamw", "adam", "sgd"), default=None)
    p.add_argument("--lr", type=float, default=None, help="your training learning rate")
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("case.py"),
        help="the case file to write (default case.py)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing case file")
    p.add_argument("--device", default="cpu", help="where the contract check runs (default cpu)")
    p.set_defaults(handler=cmd_init)


def cmd_init(args: argparse.Namespace) -> ExitCode:
    from rich.console import Console

    from detective.casekit.init import (
        InitSpec,
        NormalizationSource,
        OptimizerName,
        plan_case,
        render_case,
        verify_case,
        write_case,
    )
    from detective.core.case import CaseError
    from detective.core.findings import Verdict
    from detective.ui.headless import safe

    console = Console(highlight=False)
    spec = InitSpec(
        output=args.output,
        arch=args.arch,
        weights=args.weights,
        image_size=args.image_size,
        data=args.data,
        csv=args.csv,
        train_csv=args.train_csv,
        val_csv=args.val_csv,
        test_csv=args.test_csv,
        root=args.root,
        normalization=NormalizationSource(args.normalization),
        optimizer=OptimizerName(args.optimizer) if args.optimizer else None,
        lr=args.lr,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        epochs=args.epochs,
        force=args.force,
    )
    try:
        with console.status("Reading the data, the architecture and the checkpoint…"):
            plan = plan_case(spec)
        write_case(spec, render_case(spec, plan))
    except CaseError as e:
        console.print(f"[red]error:[/] {safe(e.message)}")
        console.print("Nothing was written.")
        return ExitCode.USAGE
    except OSError as e:  # unreadable folders, a read-only output directory...
        console.print(f"[red]error:[/] {safe(e)}")
        console.print("Nothing was written.")
        return ExitCode.USAGE
    scan = plan.scan
    console.print(f"Wrote [bold]{safe(spec.output)}[/]")
    kind = "image folder" if scan.kind == "folder" else "CSV"
    console.print(f"  data      {kind}: " + " · ".join(f"{s.name} {s.size}" for s in scan.splits))
    shown = ", ".join(f"{c} ({n})" for c, n in scan.splits[0].counts[:12])
    more = f" … +{len(scan.classes) - 12}" if len(scan.classes) > 12 else ""
    console.print(
        f"  classes   {len(scan.classes)}: {safe(shown)}{more} "
        f"[dim](train items; from {safe(scan.class_source)})[/]"
    )
    if plan.stats.sampled:
        (w, h), (mw, mh) = plan.stats.median_size, plan.stats.min_size
        console.print(
            f"  images    median {w}x{h}, smallest {mw}x{mh} "
            f"[dim](of {plan.stats.sampled} sampled)[/]; model input "
            f"{spec.image_size}x{spec.image_size}"
        )
    console.print(
        f"  normalize {spec.normalization.value}: mean "
        f"{[round(v, 3) for v in plan.mean]}, std {[round(v, 3) for v in plan.std]}"
    )
    weights = f", checkpoint {safe(spec.weights.name)} fits" if spec.weights else ""
    console.print(
        f"  model     {safe(spec.arch)}, {plan.parameters / 1e6:.2f}M parameters{weights}"
    )
    for note in plan.checkpoint_notes:
        console.print(f"  [cyan]note:[/] {safe(note)}")
    for warning in scan.warnings:
        console.print(f"  [yellow]warning:[/] {safe(warning)}")
    for bad in plan.stats.unreadable[:3]:
        console.print(f"  [yellow]unreadable:[/] {safe(bad)}")
    try:
        with console.status("Loading the case and checking its contract…"):
            finding = verify_case(spec.output, args.device)
    except CaseError as e:
        console.print(f"[red]The written case does not load:[/] {safe(e.message)}")
        return ExitCode.CASE_ERROR
    ok = finding.verdict in (Verdict.PASS, Verdict.WARN)
    mark = (
        "[green]✓[/]"
        if finding.verdict is Verdict.PASS
        else ("[yellow]![/]" if ok else "[red]✗[/]")
    )
    console.print(f"  contract  {mark} {safe(finding.summary)}")
    console.print("\nCheck these before you trust the results (marked CHECK THIS in the file):")
    for item in plan.check_this:
        console.print(f"  • {safe(item)}")
    if not ok:
        console.print("Edit the case file, then run it.")
        return ExitCode.CASE_ERROR
    from detective.ui.cli import SYMPTOMS

    console.print(
        f"\nNext: [bold]detective run {safe(spec.output)} --symptom SYMPTOM[/] "
        f"[dim](SYMPTOM: {', '.join(SYMPTOMS)})[/]"
    )
    return ExitCode.OK
