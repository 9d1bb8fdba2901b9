"""Datasets from the formats users already have: ImageFolder trees and CSV files of paths/labels.

The class index of every item comes from ONE list, the case's CLASSES, for every split. Reading
each split folder on its own (as `torchvision.datasets.ImageFolder("val/")` does) shifts every
index after a class that split lacks, silently; here a split that lacks a class keeps the others'
indices, and an item whose class is not in CLASSES is an error naming it.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detective.casekit.imageio import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, open_image_info
from detective.core.case import CaseError

PATH_COLUMNS = ("path", "filepath", "file_path", "file", "filename", "image", "image_path", "img")
LABEL_COLUMNS = ("label", "class", "class_name", "target", "category", "y")
SPLIT_COLUMNS = ("split", "subset", "fold", "set", "partition")
# What people call their splits, mapped to detective's names.
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
SHOW = 5  # how many offending paths/rows a message lists


class DataError(CaseError):
    """The data on disk does not match what the case says (classes, files, columns)."""


class LabelledImages:
    """A map-style dataset of (image, class index) from a list of (file, index) pairs.

    Files are read with `detective.casekit.imageio.open_image` (RGB by default): a truncated or
    unreadable file raises `ImageReadError` naming it, which detective records against the item.
    """

    def __init__(
        self,
        samples: Sequence[tuple[Path, int]],
        classes: Sequence[str],
        transform: Callable[[Any], Any] | None = None,
        *,
        mode: str | None = "RGB",
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.samples = list(samples)
        self.classes = list(classes)
        self.targets = [label for _, label in self.samples]  # torchvision's attribute name
        self.transform = transform
        self.mode = mode
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        path, label = self.samples[i]
        image, _ = open_image_info(path, mode=self.mode, max_pixels=self.max_pixels)
        return (self.transform(image) if self.transform else image), label


# --- ImageFolder trees ---------------------------------------------------------------------------


def class_folders(split_dir: str | os.PathLike[str]) -> list[str]:
    """The class sub-folders of one split folder, sorted (hidden folders ignored)."""
    root = Path(split_dir)
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def _image_files(folder: Path, extensions: Sequence[str]) -> list[Path]:
    exts = tuple(e.lower() for e in extensions)
    return sorted(
        f
        for f in folder.rglob("*")
        if f.is_file() and f.suffix.lower() in exts and not f.name.startswith(".")
    )


def image_folder(
    split_dir: str | os.PathLike[str],
    classes: Sequence[str],
    transform: Callable[[Any], Any] | None = None,
    *,
    mode: str | None = "RGB",
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> LabelledImages:
    """`split_dir/<class>/<image>` as (image, index of <class> in `classes`).

    A class folder not in `classes` is an error (its items would have no index); a class of
    `classes` without a folder here is allowed (the split just has no item of it).
    """
    root = Path(split_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    index = {c: i for i, c in enumerate(classes)}
    found = class_folders(root)
    unknown = [c for c in found if c not in index]
    if unknown:
        raise DataError(
            f"{root} has class folder(s) not in CLASSES: {', '.join(unknown[:SHOW])}"
            + (f" (+{len(unknown) - SHOW} more)" if len(unknown) > SHOW else "")
            + "; add them to CLASSES (at the index your model was trained with) or remove them"
        )
    samples = [(f, index[c]) for c in found for f in _image_files(root / c, extensions)]
    return LabelledImages(samples, classes, transform, mode=mode)


# --- CSV files -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvColumns:
    path: str
    label: str
    split: str | None


def _pick(header: Sequence[str], wanted: str | None, known: Sequence[str], what: str) -> str:
    lower = {h.strip().lower(): h for h in header}
    if wanted is not None:
        if wanted not in header:
            raise DataError(f"no {what} column {wanted!r}; the columns are {', '.join(header)}")
        return wanted
    for name in known:
        if name in lower:
            return lower[name]
    raise DataError(
        f"cannot tell which column holds the {what} (looked for {', '.join(known[:4])}…); "
        f"the columns are {', '.join(header)}: name it with the {what}_column argument"
    )


def csv_columns(
    header: Sequence[str],
    path_column: str | None = None,
    label_column: str | None = None,
    split_column: str | None = None,
) -> CsvColumns:
    """Which columns hold the path, the label and (if any) the split."""
    path = _pick(header, path_column, PATH_COLUMNS, "path")
    label = _pick(header, label_column, LABEL_COLUMNS, "label")
    if split_column is not None:
        split: str | None = _pick(header, split_column, SPLIT_COLUMNS, "split")
    else:
        lower = {h.strip().lower(): h for h in header}
        split = next((lower[n] for n in SPLIT_COLUMNS if n in lower), None)
    return CsvColumns(path, label, split)


@dataclass(frozen=True)
class CsvRow:
    line: int  # 1-based line in the file, header included: what an editor shows
    path: Path
    label: str
    split: str | None


def read_csv_rows(
    csv_file: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    path_column: str | None = None,
    label_column: str | None = None,
    split_column: str | None = None,
) -> list[CsvRow]:
    """Every row of a CSV with a header; relative paths are taken from `root` (default: the
    CSV's own folder). Split names are normalised (valid/validation/dev → val, …)."""
    file = Path(csv_file).expanduser()
    if not file.is_file():
        raise DataError(f"CSV file not found: {file}")
    base = Path(root).expanduser() if root is not None else file.parent
    try:
        return _read_rows(file, base, path_column, label_column, split_column)
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{file} is not a readable UTF-8 CSV file ({e})") from e


def _read_rows(
    file: Path,
    base: Path,
    path_column: str | None,
    label_column: str | None,
    split_column: str | None,
) -> list[CsvRow]:
    with file.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise DataError(f"{file} is empty; expected a header row such as path,label[,split]")
        cols = csv_columns(header, path_column, label_column, split_column)
        at = {name: i for i, name in enumerate(header)}
        rows = []
        for n, record in enumerate(reader, start=2):
            if not record or not any(cell.strip() for cell in record):
                continue
            if len(record) < len(header):
                raise DataError(
                    f"{file}, line {n}: {len(record)} fields, the header has {len(header)}"
                )
            raw_path = record[at[cols.path]].strip()
            split = None
            if cols.split is not None:
                value = record[at[cols.split]].strip().lower()
                split = SPLIT_NAMES.get(value, value)
            p = Path(raw_path).expanduser()
            rows.append(
                CsvRow(n, p if p.is_absolute() else base / p, record[at[cols.label]].strip(), split)
            )
    return rows


def missing_files(rows: Sequence[CsvRow]) -> list[CsvRow]:
    return [r for r in rows if not r.path.is_file()]


def missing_files_message(
    file: str | os.PathLike[str],
    missing: Sequence[CsvRow],
    total: int,
    root: str | os.PathLike[str] | None,
) -> str:
    shown = "; ".join(f"line {r.line}: {r.path}" for r in missing[:SHOW])
    where = f"under --root {root}" if root is not None else "relative to the CSV's folder"
    return (
        f"{file}: {len(missing)} of {total} listed image file(s) do not exist ({shown}"
        + (f"; +{len(missing) - SHOW} more" if len(missing) > SHOW else "")
        + f"). Relative paths are read {where}: is the root right?"
    )


def csv_split(
    csv_file: str | os.PathLike[str],
    classes: Sequence[str],
    transform: Callable[[Any], Any] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    split: str | None = None,
    path_column: str | None = None,
    label_column: str | None = None,
    split_column: str | None = None,
    mode: str | None = "RGB",
) -> LabelledImages:
    """The rows of `csv_file` (all, or those whose split column says `split`) as
    (image, index of the row's label in `classes`). Missing files and labels not in `classes`
    are errors that list the first offending rows."""
    rows = read_csv_rows(
        csv_file,
        root,
        path_column=path_column,
        label_column=label_column,
        split_column=split_column,
    )
    if split is not None:
        if rows and rows[0].split is None:
            raise DataError(f"{csv_file} has no split column, so split={split!r} cannot be chosen")
        rows = [r for r in rows if r.split == split]
    if not rows:
        raise DataError(f"{csv_file}: no rows" + (f" for split {split!r}" if split else ""))
    index = {c: i for i, c in enumerate(classes)}
    unknown = [r for r in rows if r.label not in index]
    if unknown:
        labels = Counter(r.label for r in unknown)
        first: dict[str, int] = {}
        for r in unknown:
            first.setdefault(r.label, r.line)
        raise DataError(
            f"{csv_file}: {len(unknown)} row(s) have labels not in CLASSES: "
            + ", ".join(
                f"{lab!r} ({n} rows, first at line {first[lab]})"
                for lab, n in labels.most_common(SHOW)
            )
        )
    missing = missing_files(rows)
    if missing:
        raise DataError(missing_files_message(csv_file, missing, len(rows), root))
    return LabelledImages([(r.path, index[r.label]) for r in rows], classes, transform, mode=mode)
