"""The user's own training logs: a CSV file or a TensorBoard event folder, as loss series.

Column / tag names vary between projects, so a few conventional spellings are recognised; the
finding says which ones were used. Long logs are thinned to at most MAX_POINTS points (non-finite
values are always kept, they are the evidence of a divergence).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

MAX_POINTS = 1000
_STEP = ("step", "global_step", "iteration", "iter", "epoch", "batch")
_TRAIN = ("train_loss", "train/loss", "loss/train", "training_loss", "train loss", "loss")
_VAL = (
    "val_loss",
    "val/loss",
    "loss/val",
    "valid_loss",
    "validation_loss",
    "loss/validation",
    "eval_loss",
    "eval/loss",
    "test_loss",
    "val loss",
)


class LogError(Exception):
    pass


@dataclass(frozen=True)
class Series:
    name: str
    steps: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class TrainingLog:
    source: str  # "csv" or "tensorboard"
    path: str
    train: Series
    val: Series | None


def read_logs(path: str) -> TrainingLog:
    p = Path(path).expanduser()
    if not p.exists():
        raise LogError(f"--logs {path}: no such file or folder")
    if p.is_file() and p.suffix.lower() in (".csv", ".tsv"):
        return _read_csv(p)
    return _read_tensorboard(p)


def _pick(names: list[str], wanted: tuple[str, ...]) -> str | None:
    lower = {n.strip().lower(): n for n in names}
    return next((lower[w] for w in wanted if w in lower), None)


def _float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _read_csv(p: Path) -> TrainingLog:
    with p.open(newline="", encoding="utf-8", errors="replace") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        dialect = csv.Sniffer().sniff(sample, ",;\t") if sample else csv.excel
        rows = list(csv.DictReader(fh, dialect=dialect))
    if not rows:
        raise LogError(f"{p.name}: the CSV has no rows")
    names = list(rows[0])
    tcol, vcol, scol = _pick(names, _TRAIN), _pick(names, _VAL), _pick(names, _STEP)
    if tcol is None:
        raise LogError(
            f"{p.name}: no train-loss column (looked for {', '.join(_TRAIN)}; found "
            f"{', '.join(names)})"
        )

    def series(col: str) -> Series | None:
        pts = []
        for i, r in enumerate(rows):
            raw = (r.get(col) or "").strip()
            if not raw:
                continue  # e.g. val logged once per epoch, train every step
            step = int(_float(r[scol])) if scol and math.isfinite(_float(r[scol])) else i
            pts.append((step, _float(raw)))
        return _series(col, pts) if pts else None

    train = series(tcol)
    if train is None:
        raise LogError(f"{p.name}: column {tcol!r} holds no values")
    return TrainingLog("csv", str(p), train, series(vcol) if vcol else None)


def _read_tensorboard(p: Path) -> TrainingLog:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(p), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags().get("scalars", [])
    if not tags:
        raise LogError(f"{p}: no TensorBoard scalars found (point --logs at the run's log folder)")
    tcol, vcol = _pick(tags, _TRAIN), _pick(tags, _VAL)
    if tcol is None:
        raise LogError(f"{p}: no train-loss scalar (looked for {', '.join(_TRAIN)}; found {tags})")

    def series(tag: str) -> Series:
        return _series(tag, [(e.step, float(e.value)) for e in acc.Scalars(tag)])

    return TrainingLog("tensorboard", str(p), series(tcol), series(vcol) if vcol else None)


def _series(name: str, pts: list[tuple[int, float]]) -> Series:
    pts.sort(key=lambda t: t[0])
    if len(pts) > MAX_POINTS:
        stride = math.ceil(len(pts) / MAX_POINTS)
        pts = [pt for i, pt in enumerate(pts) if i % stride == 0 or not math.isfinite(pt[1])]
    return Series(name, tuple(s for s, _ in pts), tuple(v for _, v in pts))
