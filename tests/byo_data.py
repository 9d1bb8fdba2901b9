"""Bring-your-own-model test data, made from scratch: an ImageFolder of small PNGs, a CSV of the
same files, and resnet18 checkpoints in the formats users have."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("checks", "hstripes", "vstripes")


def pattern(kind: str, rng: np.random.Generator, size: int = 32) -> Image.Image:
    """A noisy, randomly coloured pattern of one of three kinds."""
    period = int(rng.integers(4, 9))
    yy, xx = np.mgrid[0:size, 0:size]
    phase = int(rng.integers(0, period))
    if kind == "hstripes":
        mask = ((yy + phase) // (period // 2)) % 2
    elif kind == "vstripes":
        mask = ((xx + phase) // (period // 2)) % 2
    else:
        mask = (((yy + phase) // (period // 2)) + ((xx + phase) // (period // 2))) % 2
    fg, bg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    img = np.where(mask[..., None] == 1, fg, bg).astype(np.float64)
    img += rng.normal(0, 12, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def make_image_folder(
    root: Path,
    per_class: dict[str, int] | None = None,
    classes: tuple[str, ...] = CLASSES,
    skip: dict[str, tuple[str, ...]] | None = None,
    seed: int = 0,
) -> Path:
    """root/{train,val}/<class>/<n>.png; `skip` leaves a split without some class folders."""
    per_class = per_class or {"train": 20, "val": 8}
    skip = skip or {}
    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for c in classes:
            if c in skip.get(split, ()):
                continue
            folder = root / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pattern(c, rng).save(folder / f"{i:03d}.png")
    return root


def write_csv(path: Path, rows: list[tuple[str, str, str | None]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["path", "label", "split"] if rows and rows[0][2] is not None else ["path", "label"]
        )
        for p, label, split in rows:
            w.writerow([p, label, split] if split is not None else [p, label])
    return path


def folder_rows(root: Path, split_column: bool = True) -> list[tuple[str, str, str | None]]:
    """(path relative to root, label, split) for every PNG of an image folder tree."""
    return [
        (
            f.relative_to(root).as_posix(),
            f.parent.name,
            f.parent.parent.name if split_column else None,
        )
        for f in sorted(root.rglob("*.png"))
    ]


def resnet18_state(num_classes: int = 3, seed: int = 0) -> dict:
    import torch
    import torchvision

    torch.manual_seed(seed)
    return torchvision.models.resnet18(num_classes=num_classes).state_dict()
