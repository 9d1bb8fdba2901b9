"""What `detective init` finds in the user's data: splits, classes, counts, what looks wrong.

Classes come from one place — the train split — and every other split is read against them: a
split that lacks a class is a warning (its indices still line up), a split with a class train
does not have is an error (the model was never trained on it; no index is right).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from detective.casekit.data import (
    SHOW,
    SPLIT_NAMES,
    CsvRow,
    DataError,
    _image_files,
    class_folders,
    missing_files,
    missing_files_message,
    read_csv_rows,
)
from detective.casekit.imageio import IMAGE_EXTENSIONS

SPLIT_ORDER = ("train", "val", "test")


@dataclass(frozen=True)
class SplitScan:
    name: str  # train / val / test
    source: str  # the folder, or the CSV file (and split value)
    counts: tuple[tuple[str, int], ...]  # (class, items) in CLASSES order
    files: tuple[Path, ...]  # for measuring statistics on a sample

    @property
    def size(self) -> int:
        return sum(n for _, n in self.counts)


@dataclass(frozen=True)
class DataScan:
    kind: str  # "folder" or "csv"
    classes: tuple[str, ...]
    splits: tuple[SplitScan, ...]
    warnings: tuple[str, ...]
    class_source: str  # where CLASSES came from, for the case file's comment

    def split(self, name: str) -> SplitScan | None:
        return next((s for s in self.splits if s.name == name), None)


def _check_against_train(
    name: str, source: str, counts: Counter[str], classes: tuple[str, ...], where: str
) -> list[str]:
    extra = sorted(set(counts) - set(classes))
    if extra:
        raise DataError(
            f"{source} has class(es) the train split does not: {', '.join(extra[:SHOW])}. "
            f"The model cannot have learned them and no class index is right for them; "
            f"remove them from {name} or add them to train{where}"
        )
    lacking = [c for c in classes if counts.get(c, 0) == 0]
    if not lacking:
        return []
    return [
        f"the {name} split has no item of {len(lacking)} class(es): {', '.join(lacking[:SHOW])}"
        + (f" (+{len(lacking) - SHOW} more)" if len(lacking) > SHOW else "")
        + " — class indices still follow train's list, so nothing shifts; but per-class "
        "numbers for them will be empty"
    ]


def scan_image_folder(data_dir: str | os.PathLike[str]) -> DataScan:
    """`data_dir/{train,val[,test]}/<class>/<image>` (valid/validation/dev count as val)."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    dirs: dict[str, Path] = {}
    for d in sorted(root.iterdir()):
        name = SPLIT_NAMES.get(d.name.lower())
        if d.is_dir() and name and name not in dirs:
            dirs[name] = d
    if "train" not in dirs or "val" not in dirs:
        have = ", ".join(d.name for d in sorted(root.iterdir()) if d.is_dir()) or "none"
        raise DataError(
            f"{root} needs train/ and val/ sub-folders, each with one folder per class "
            f"(found folders: {have}). For a CSV of paths and labels use --train-csv/--val-csv "
            "or --csv with a split column"
        )
    classes = tuple(class_folders(dirs["train"]))
    if not classes:
        raise DataError(f"{dirs['train']} has no class sub-folders (expected train/<class>/…)")
    warnings: list[str] = []
    splits = []
    for name in SPLIT_ORDER:
        if name not in dirs:
            continue
        files = {
            c: _image_files(dirs[name] / c, IMAGE_EXTENSIONS) for c in class_folders(dirs[name])
        }
        counts = Counter({c: len(f) for c, f in files.items()})
        if name != "train":
            warnings += _check_against_train(name, str(dirs[name]), counts, classes, "")
        elif empty := [c for c in classes if not counts[c]]:
            warnings.append(f"train class folder(s) with no image: {', '.join(empty[:SHOW])}")
        if not sum(counts.values()):
            raise DataError(f"{dirs[name]} holds no image ({', '.join(IMAGE_EXTENSIONS)})")
        splits.append(
            SplitScan(
                name,
                str(dirs[name]),
                tuple((c, counts.get(c, 0)) for c in classes),
                tuple(f for c in classes for f in files.get(c, [])),
            )
        )
    return DataScan(
        "folder",
        classes,
        tuple(splits),
        tuple(warnings),
        f"the class folders of {dirs['train']}, sorted",
    )


def _classes_of(labels: Counter[str]) -> tuple[tuple[str, ...], str]:
    if all(lab.isdigit() for lab in labels):
        # Integer labels are indices already: keep them in place, 0..max.
        top = max(int(lab) for lab in labels)
        return tuple(str(i) for i in range(top + 1)), "the train CSV's integer labels 0..max"
    return tuple(sorted(labels)), "the train CSV's label names, sorted"


def scan_csv(
    *,
    csv: str | os.PathLike[str] | None = None,
    train_csv: str | os.PathLike[str] | None = None,
    val_csv: str | os.PathLike[str] | None = None,
    test_csv: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
) -> DataScan:
    """One CSV with a split column (`csv`), or one CSV per split."""
    by_split: dict[str, tuple[str, list[CsvRow]]] = {}
    if csv is not None:
        rows = read_csv_rows(csv, root)
        if rows and rows[0].split is None:
            raise DataError(
                f"{csv} has no split column (split/subset/fold/set): add one, or give one CSV "
                "per split with --train-csv/--val-csv"
            )
        for name in SPLIT_ORDER:
            part = [r for r in rows if r.split == name]
            if part:
                by_split[name] = (f"{csv} (split={name})", part)
        other = sorted({r.split for r in rows if r.split not in SPLIT_ORDER}, key=str)
        if other:
            raise DataError(
                f"{csv}: unknown split value(s) {', '.join(map(str, other[:SHOW]))}; "
                "use train, val (or valid/validation/dev) and test"
            )
    else:
        for name, file in (("train", train_csv), ("val", val_csv), ("test", test_csv)):
            if file is not None:
                by_split[name] = (str(file), read_csv_rows(file, root))
    if "train" not in by_split or "val" not in by_split:
        raise DataError(
            f"the CSV data needs a train and a val split (found: {', '.join(by_split) or 'none'})"
        )
    for source, rows in by_split.values():
        missing = missing_files(rows)
        if missing:
            raise DataError(missing_files_message(source, missing, len(rows), root))
    classes, class_source = _classes_of(Counter(r.label for r in by_split["train"][1]))
    warnings: list[str] = []
    splits = []
    for name, (source, rows) in by_split.items():
        counts = Counter(r.label for r in rows)
        if name != "train":
            warnings += _check_against_train(name, source, counts, classes, "'s CSV")
        elif empty := [c for c in classes if not counts[c]]:
            warnings.append(f"integer label(s) with no train row: {', '.join(empty[:SHOW])}")
        splits.append(
            SplitScan(
                name,
                source,
                tuple((c, counts.get(c, 0)) for c in classes),
                tuple(r.path for r in rows),
            )
        )
    return DataScan("csv", classes, tuple(splits), tuple(warnings), class_source)
