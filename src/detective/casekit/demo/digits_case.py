"""Demo case: handwritten digits (scikit-learn's `load_digits`, 1,797 real 8x8 scans).

A small CNN trained for a few seconds on CPU. It has one deliberate, realistic flaw: the
evaluation transform normalizes with constants copied from another project ((x - 0.5) / 0.5)
instead of the ones training used, so the model is evaluated on inputs shifted and scaled away
from everything it saw (train accuracy high, validation accuracy low).

This file is also the reference example of a case: module-level hooks, documented in the README.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

CLASSES = [str(d) for d in range(10)]
# What we believe the model expects (the digits' own pixel statistics, in [0, 1] units).
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 10, "batch_size": 64, "lr": 2e-3, "seed": 0}


def _split() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)  # real 8x8 scans, 0..16
    x_tr, x_va, y_tr, y_va = train_test_split(
        images, digits.target, test_size=0.25, stratify=digits.target, random_state=0
    )
    return {"train": (x_tr, y_tr), "val": (x_va, y_va)}


class Digits(Dataset):
    """(PIL image, label) pairs, optionally through a transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        image = Image.fromarray(self.images[i], mode="L")
        label = int(self.labels[i])
        return (self.transform(image) if self.transform else image), label


def transforms() -> dict:
    normalize = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), normalize]),
        # The flaw: the eval pipeline was copied from another project with its constants.
        "eval": T.Compose([T.ToTensor(), T.Normalize([0.5], [0.5])]),
    }


def raw_datasets() -> dict:
    return {name: Digits(x, y) for name, (x, y) in _split().items()}


def datasets() -> dict:
    tf = transforms()
    parts = _split()
    return {
        "train": Digits(*parts["train"], transform=tf["train"]),
        "val": Digits(*parts["val"], transform=tf["eval"]),
    }


class SmallCNN(nn.Module):
    def __init__(self, width: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


def fresh_model() -> nn.Module:
    torch.manual_seed(TRAIN["seed"])
    return SmallCNN()


def _train_and_save(path: Path) -> None:
    """The user's own training script, in miniature: runs once, then the checkpoint is reused."""
    torch.manual_seed(TRAIN["seed"])
    model = fresh_model()
    data = datasets()["train"]
    loader = torch.utils.data.DataLoader(data, batch_size=TRAIN["batch_size"], shuffle=True)
    opt = torch.optim.AdamW(model.parameters(), lr=TRAIN["lr"])
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(TRAIN["epochs"]):
        for x, y in loader:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Atomic, and per process: a killed run never leaves half a checkpoint, and torchrun ranks
    # that train at once each write their own temporary file.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)


def model() -> nn.Module:
    from detective.analysis.torchutil import safe_load

    cache = Path(os.environ.get("DETECTIVE_CACHE_DIR", Path.home() / ".cache" / "detective"))
    key = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    checkpoint = cache / f"demo-digits-{key}.pt"
    if not checkpoint.exists():
        _train_and_save(checkpoint)
    net = SmallCNN()
    net.load_state_dict(safe_load(checkpoint))
    return net.eval()
