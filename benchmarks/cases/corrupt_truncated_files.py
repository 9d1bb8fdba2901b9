"""Corrupt inputs: the images live as PNG files, and a sync that was interrupted left 5% of them
truncated and a few empty. The training script skipped unreadable files silently (a try/except in
its collate function), so nobody noticed that a slice of the data never reaches the model."""

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit
from detective.casekit.imageio import ImageFolder

EXPECTED = "corrupt_inputs"
SYMPTOM = None
FAMILY = "digits"
BUG = "5% of the PNG files truncated, 1% empty (0 bytes)"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def _root() -> Path:
    """Write the digits as PNG files once (deterministically), then damage some of them."""
    root = kit.cache_dir() / f"bench-corrupt-files-{kit.file_key(__file__)[:12]}"
    if (root / "done").exists():
        return root
    rng = np.random.default_rng(11)
    for split, (x, y) in kit.digits_splits().items():
        for c in CLASSES:
            (root / split / c).mkdir(parents=True, exist_ok=True)
        for i, (img, label) in enumerate(zip(x, y, strict=True)):
            f = root / split / str(label) / f"{i:05d}.png"
            Image.fromarray(np.kron(img, np.ones((4, 4), np.uint8))).save(f)  # 32x32 scans
            u = rng.random()
            if u < 0.05:
                data = f.read_bytes()
                f.write_bytes(data[: len(data) // 3])
            elif u < 0.06:
                f.write_bytes(b"")
    (root / "done").write_text("")
    return root


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.Resize(8), T.RandomAffine(degrees=8), T.ToTensor(), norm]),
        "eval": T.Compose([T.Resize(8), T.ToTensor(), norm]),
    }


def raw_datasets():
    return {s: ImageFolder(_root() / s, mode="L", classes=CLASSES) for s in ("train", "val")}


def datasets():
    tf = transforms()
    return {
        "train": ImageFolder(_root() / "train", tf["train"], mode="L", classes=CLASSES),
        "val": ImageFolder(_root() / "val", tf["eval"], mode="L", classes=CLASSES),
    }


def fresh_model():
    return kit.SmallCNN()


class _SkipUnreadable(torch.utils.data.Dataset):
    """The user's workaround: unreadable items are silently left out of training."""

    def __init__(self, data):
        self.data = data
        self.ok = [i for i in range(len(data)) if os.path.getsize(data.samples[i][0]) > 0]
        self.ok = [i for i in self.ok if self._readable(i)]

    def _readable(self, i):
        try:
            self.data[i]
        except Exception:
            return False
        return True

    def __len__(self):
        return len(self.ok)

    def __getitem__(self, i):
        return self.data[self.ok[i]]


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(
            m, _SkipUnreadable(datasets()["train"]), epochs=TRAIN["epochs"], lr=TRAIN["lr"]
        ),
    )
