"""`detective init`: from the user's data, architecture and checkpoint to a readable case file.

Three steps, each usable on its own: `plan_case` looks at everything (data, classes, the
architecture, the checkpoint, input statistics) and raises a `CaseError` with a clear message
when something does not fit; `render_case` writes the case file's text from the plan, every
guess marked CHECK THIS; `verify_case` loads the written file and runs the case_contract check.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from detective.casekit.scan import DataScan, scan_csv, scan_image_folder
from detective.casekit.stats import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageStats,
    measure,
    stored_sizes,
)
from detective.core.case import CaseError, TrainSettings
from detective.core.findings import Finding


class NormalizationSource(StrEnum):
    MEASURED = "measured"  # per-channel statistics of a sample of train images
    IMAGENET = "imagenet"
    NONE = "none"  # ToTensor's [0, 1] values as they are


class OptimizerName(StrEnum):
    ADAMW = "adamw"
    ADAM = "adam"
    SGD = "sgd"


@dataclass(frozen=True)
class InitSpec:
    """Everything `detective init` was told; None means "infer it"."""

    output: Path
    arch: str
    weights: Path | None = None
    image_size: int = 224
    data: Path | None = None  # an ImageFolder tree with train/ val/ [test/]
    csv: Path | None = None  # one CSV with a split column
    train_csv: Path | None = None
    val_csv: Path | None = None
    test_csv: Path | None = None
    root: Path | None = None  # where relative CSV paths start
    normalization: NormalizationSource = NormalizationSource.MEASURED
    optimizer: OptimizerName | None = None
    lr: float | None = None
    weight_decay: float | None = None
    batch_size: int | None = None
    epochs: int | None = None
    measure_images: int = 256
    force: bool = False


@dataclass(frozen=True)
class CasePlan:
    scan: DataScan
    stats: ImageStats
    mean: tuple[float, ...]
    std: tuple[float, ...]
    parameters: int
    resize: int  # the eval transform's resize before the centre crop
    checkpoint_notes: tuple[str, ...]
    check_this: tuple[str, ...]  # what the user must confirm, in the order the file has it


def resize_for(image_size: int, short_side: int | None = None) -> int:
    """The usual eval resize before the centre crop: 256 for 224 (crop fraction 0.875); images
    already no larger than the input (CIFAR-like) are resized to it, not cropped into."""
    if short_side is not None and short_side <= image_size:
        return image_size
    return round(image_size / 0.875)


class InitError(CaseError):
    """A usage problem with `detective init` itself (output exists, options conflict)."""


def _data_scan(spec: InitSpec) -> DataScan:
    csvs = (spec.csv, spec.train_csv, spec.val_csv, spec.test_csv)
    if spec.data is not None and any(c is not None for c in csvs):
        raise InitError("give either --data (an image folder tree) or CSV files, not both")
    if spec.data is not None:
        return scan_image_folder(spec.data)
    if spec.csv is not None and any(c is not None for c in csvs[1:]):
        raise InitError(
            "give either --csv (one file with a split column) or --train-csv/--val-csv, not both"
        )
    if all(c is None for c in csvs):
        raise InitError(
            "where is the data? --data DIR (train/ val/ sub-folders of class "
            "folders), --train-csv/--val-csv, or --csv with a split column"
        )
    return scan_csv(
        csv=spec.csv,
        train_csv=spec.train_csv,
        val_csv=spec.val_csv,
        test_csv=spec.test_csv,
        root=spec.root,
    )


def plan_case(spec: InitSpec) -> CasePlan:
    """Look at the data, the architecture and the checkpoint; raise CaseError on a mismatch."""
    from detective.casekit.models import build_arch, inspect_checkpoint

    if spec.output.exists() and not spec.force:
        raise InitError(f"{spec.output} exists; pass --force to overwrite it")
    if spec.image_size < 8:
        raise InitError(f"--image-size {spec.image_size} is too small")
    scan = _data_scan(spec)
    model = build_arch(spec.arch, len(scan.classes))
    notes: tuple[str, ...] = ()
    if spec.weights is not None:
        notes = inspect_checkpoint(model, spec.weights).notes
    train = scan.split("train")
    assert train is not None  # the scans guarantee a train split
    sizes = stored_sizes(list(train.files), n=spec.measure_images)
    short = sorted(min(w, h) for w, h in sizes)[len(sizes) // 2] if sizes else None
    resize = resize_for(spec.image_size, short)
    stats = measure(list(train.files), spec.image_size, resize, n=spec.measure_images)
    check = []
    if spec.normalization is NormalizationSource.MEASURED:
        if not stats.sampled:
            raise CaseError(
                "no train image could be read to measure normalization: "
                + "; ".join(stats.unreadable[:3])
            )
        mean, std = stats.mean, stats.std
        check.append(
            f"NORMALIZATION was measured on {stats.sampled} train images: replace it with the "
            "constants your training used (ImageNet's if you fine-tuned ImageNet weights)"
        )
    elif spec.normalization is NormalizationSource.IMAGENET:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        check.append("NORMALIZATION is ImageNet's: right only if your training used it")
    else:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        check.append("NORMALIZATION is none ([0, 1] inputs): right only if training had none")
    check.append(
        f"transforms(): eval resizes to {resize} and centre-crops "
        f"{spec.image_size}; train is a RandomResizedCrop + flip guess: match your training"
    )
    if spec.lr is None or spec.optimizer is None:
        check.append(
            "TRAIN / optimizer(): "
            + ("the learning rate" if spec.lr is None else "the optimizer")
            + (" and the optimizer are" if spec.lr is None and spec.optimizer is None else " is")
            + " a default (pass --lr / --optimizer, or edit): the learning checks train with it"
        )
    if scan.class_source.endswith("sorted"):
        check.append(f"CLASSES come from {scan.class_source}: the order must be your training's")
    if spec.weights is None:
        check.append("no --weights: model() returns an untrained network; add your checkpoint")
    return CasePlan(
        scan=scan,
        stats=stats,
        mean=tuple(mean),
        std=tuple(std),
        parameters=sum(p.numel() for p in model.parameters()),
        resize=resize,
        checkpoint_notes=notes,
        check_this=tuple(check),
    )


# --- rendering -----------------------------------------------------------------------------------


def _py(text: str) -> str:
    """A Python string literal in double quotes (JSON's escapes are Python's too)."""
    return json.dumps(text, ensure_ascii=False)


def _path_expr(path: Path, case_dir: Path) -> str:
    """`HERE / "data"` for a path beside or below the case file, else the absolute path."""
    target = Path(os.path.abspath(path.expanduser()))
    rel = os.path.relpath(target, os.path.abspath(case_dir))
    if not rel.startswith(".."):
        return f"HERE / {_py(Path(rel).as_posix())}"
    return f"Path({_py(target.as_posix())})"


def _floats(values: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def _train_settings(spec: InitSpec) -> TrainSettings:
    d = TrainSettings()
    return TrainSettings(
        epochs=spec.epochs if spec.epochs is not None else d.epochs,
        batch_size=spec.batch_size if spec.batch_size is not None else d.batch_size,
        lr=spec.lr if spec.lr is not None else d.lr,
        weight_decay=spec.weight_decay if spec.weight_decay is not None else d.weight_decay,
        seed=d.seed,
    )


_OPTIMIZERS = {
    OptimizerName.ADAMW: 'torch.optim.AdamW(\n        model.parameters(), lr=TRAIN["lr"], '
    'weight_decay=TRAIN["weight_decay"]\n    )',
    OptimizerName.ADAM: 'torch.optim.Adam(\n        model.parameters(), lr=TRAIN["lr"], '
    'weight_decay=TRAIN["weight_decay"]\n    )',
    OptimizerName.SGD: 'torch.optim.SGD(\n        model.parameters(), lr=TRAIN["lr"], '
    'momentum=0.9, weight_decay=TRAIN["weight_decay"]\n    )',
}


def _split_calls(
    spec: InitSpec, plan: CasePlan, case_dir: Path
) -> tuple[list[str], list[tuple[str, str]]]:
    """(constants, (split, call with a `{tf}` slot for the transform argument)) for the data."""
    names = [s.name for s in plan.scan.splits]
    consts: list[str] = []
    calls: list[tuple[str, str]] = []
    if plan.scan.kind == "folder":
        assert spec.data is not None
        consts.append(
            f"DATA = {_path_expr(spec.data, case_dir)}  # train/ val/ [test/], one folder per class"
        )
        for s in plan.scan.splits:
            sub = Path(s.source).name
            calls.append((s.name, f"image_folder(DATA / {_py(sub)}, CLASSES{{tf}})"))
        return consts, calls
    root = "ROOT" if spec.root is not None else None
    if spec.root is not None:
        consts.append(f"ROOT = {_path_expr(spec.root, case_dir)}  # relative image paths start")
    root_arg = f", root={root}" if root else ""
    if spec.csv is not None:
        consts.append(f"CSV = {_path_expr(spec.csv, case_dir)}  # path,label,split")
        for name in names:
            calls.append((name, f'csv_split(CSV, CLASSES{{tf}}{root_arg}, split="{name}")'))
    else:
        files = {"train": spec.train_csv, "val": spec.val_csv, "test": spec.test_csv}
        for name in names:
            const = f"{name.upper()}_CSV"
            file = files[name]
            assert file is not None
            consts.append(f"{const} = {_path_expr(file, case_dir)}  # path,label")
            calls.append((name, f"csv_split({const}, CLASSES{{tf}}{root_arg})"))
    return consts, calls


def _tf_arg(split: str) -> str:
    """The transform argument of a split's dataset: training augmentation for train only."""
    return ', tf["train"]' if split == "train" else ', tf["eval"]'


def render_case(spec: InitSpec, plan: CasePlan) -> str:
    """The case file's text: the documented hooks, every inferred value commented."""
    case_dir = spec.output.parent
    scan = plan.scan
    consts, calls = _split_calls(spec, plan, case_dir)
    train = _train_settings(spec)
    optimizer = spec.optimizer or OptimizerName.ADAMW
    helper = "image_folder" if scan.kind == "folder" else "csv_split"
    weights = (
        f"WEIGHTS = {_path_expr(spec.weights, case_dir)}  # your checkpoint: state_dict "
        ".pt/.pth or .safetensors"
        if spec.weights is not None
        else "WEIGHTS = None  # CHECK THIS: no checkpoint given; the model is untrained"
    )
    norm_comment = {
        NormalizationSource.MEASURED: (
            f"# CHECK THIS: measured on {plan.stats.sampled} train images (per-channel mean/std "
            "in [0, 1] units).\n# Replace with the constants your training normalized with, "
            "e.g. ImageNet's\n# mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225]."
        ),
        NormalizationSource.IMAGENET: (
            "# CHECK THIS: ImageNet statistics; right only if your training normalized with them."
        ),
        NormalizationSource.NONE: (
            "# CHECK THIS: no normalization (mean 0, std 1): inputs are ToTensor's [0, 1] values."
        ),
    }[spec.normalization]
    raw_rows = "\n".join(f'        "{name}": {call.format(tf="")},' for name, call in calls)
    rows = "\n".join(f'        "{name}": {call.format(tf=_tf_arg(name))},' for name, call in calls)
    size_note = ""
    if plan.stats.sampled:
        w, h = plan.stats.median_size
        size_note = f"  # your train images: median {w}x{h} px"
    date = dt.date.today().isoformat()
    lines = [
        f'"""Case for detective, written by `detective init` on {date}.',
        "",
        "Everything here is yours to edit: detective reads these hooks and nothing else (README,",
        '"Writing a case"). Lines marked CHECK THIS are guesses: make them match your training.',
        "",
        f"    detective run {spec.output.name} --symptom train_high_val_low",
        '"""',
        "",
        "from pathlib import Path",
        "",
        "import torch",
        "from torchvision import transforms as T  # noqa: N812",
        "",
        f"from detective.casekit import build_arch, {helper}, load_checkpoint",
        "",
        "HERE = Path(__file__).resolve().parent",
        *consts,
        weights,
        f"ARCH = {_py(spec.arch)}  # a torchvision model name, or timm:NAME",
        f"IMAGE_SIZE = {spec.image_size}{size_note}",
        "",
        "# The class index is the position in this list, in every split.",
        f"# From {scan.class_source}.",
        "CLASSES = [" + ", ".join(_py(c) for c in scan.classes) + "]",
        "",
        norm_comment,
        f'NORMALIZATION = {{"mean": {_floats(plan.mean)}, "std": {_floats(plan.std)}}}',
        "",
        "# CHECK THIS: the recipe detective's short training probes use (loss curve, LR range,",
        "# overfit one batch...): "
        + ("from your options." if spec.lr is not None else "defaults, not read from your run."),
        f'TRAIN = {{"epochs": {train.epochs}, "batch_size": {train.batch_size}, '
        f'"lr": {train.lr!r}, "weight_decay": {train.weight_decay!r}, "seed": {train.seed}}}',
        "",
        "",
        "def transforms():",
        '    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])',
        "    return {",
        "        # CHECK THIS: match your training augmentation.",
        '        "train": T.Compose(',
        "            [T.RandomResizedCrop(IMAGE_SIZE), T.RandomHorizontalFlip(), T.ToTensor(), "
        "norm]",
        "        ),",
        f"        # CHECK THIS: short side resized to {plan.resize}, centre crop IMAGE_SIZE.",
        '        "eval": T.Compose(',
        f"            [T.Resize({plan.resize}), T.CenterCrop(IMAGE_SIZE), T.ToTensor(), norm]",
        "        ),",
        "    }",
        "",
        "",
        "def raw_datasets():",
        "    # The same items before any transform (PIL images): the pipeline checks compare.",
        "    return {",
        raw_rows,
        "    }",
        "",
        "",
        "def datasets():",
        "    tf = transforms()",
        "    return {",
        rows,
        "    }",
        "",
        "",
        "def fresh_model():",
        "    # An untrained model of the same architecture (no weights are downloaded).",
        "    return build_arch(ARCH, num_classes=len(CLASSES))",
        "",
        "",
        "def model():",
        "    # Your checkpoint, read with torch.load(weights_only=True) or safetensors; a mismatch",
        "    # (other architecture, other number of classes) is an error that names the keys.",
        "    net = fresh_model()",
        "    return load_checkpoint(net, WEIGHTS) if WEIGHTS is not None else net.eval()",
        "",
        "",
        "def optimizer(model):",
        "    # CHECK THIS: your optimizer"
        + (" (from --optimizer)." if spec.optimizer is not None else " (a default)."),
        f"    return {_OPTIMIZERS[optimizer]}",
        "",
    ]
    return "\n".join(lines)


def write_case(spec: InitSpec, text: str) -> None:
    """Write atomically; never over an existing file without force."""
    out = spec.output
    if out.exists() and not spec.force:
        raise InitError(f"{out} exists; pass --force to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)


def init_hint(path: Path) -> str | None:
    """For a data folder or CSV given where a case file is expected: the init command to run."""
    case = _py(str(path.with_name("case.py") if path.is_file() else path / "case.py"))
    if path.is_dir():
        return (
            f"{path} is a folder. For a data folder (train/ val/ of class folders), write a case "
            f"first: detective init --data {path} --arch NAME --weights CHECKPOINT -o {case}"
        )
    if path.suffix.lower() == ".csv":
        return (
            f"{path} is a CSV. Write a case from it first: detective init --csv {path} "
            f"--arch NAME --weights CHECKPOINT -o {case} (or --train-csv/--val-csv)"
        )
    return None


def verify_case(path: Path, device: str = "cpu") -> Finding:
    """Load the written case and run the case_contract check on it (no session is written)."""
    import tempfile

    from detective.core.case import load_case
    from detective.core.context import RunContext, RunOptions
    from detective.core.engine import run_one
    from detective.core.progress import Progress
    from detective.core.registry import get_check

    case = load_case(path)
    with tempfile.TemporaryDirectory(prefix="detective-init-") as tmp:
        ctx = RunContext(case, RunOptions(device=device), Path(tmp) / "a", Path(tmp) / "c")
        _, finding = run_one(get_check("case_contract"), ctx, Progress())
    return finding
