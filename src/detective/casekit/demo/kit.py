"""Building blocks for small, real cases: scikit-learn's digits, a small CNN, cached training.

Used by the test suite and the diagnosis benchmark's cases (ordinary case files that import this),
so that each case only states its own data, model and planted bug. Nothing is downloaded: the
digits ship inside scikit-learn.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset


def cache_dir() -> Path:
    return Path(os.environ.get("DETECTIVE_CACHE_DIR", Path.home() / ".cache" / "detective"))


def digits_splits(
    test_size: float = 0.25, seed: int = 0, size: int = 8
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """uint8 images (N, size, size) in 0..255 and int labels, stratified train/val split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    if size != 8:
        images = np.stack(
            [np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images]
        )
    x_tr, x_va, y_tr, y_va = train_test_split(
        images, digits.target, test_size=test_size, stratify=digits.target, random_state=seed
    )
    return {"train": (x_tr, y_tr.astype(np.int64)), "val": (x_va, y_va.astype(np.int64))}


class ArrayImages(Dataset):
    """(PIL image, label) from uint8 arrays (N,H,W) or (N,H,W,3), optionally transformed."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable | None = None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        arr = self.images[i]
        image = Image.fromarray(arr, mode="L" if arr.ndim == 2 else "RGB")
        label = int(self.labels[i])
        return (self.transform(image) if self.transform else image), label


class TensorImages(Dataset):
    """(tensor, label) pairs from a float tensor (N,C,H,W): fast, for tests."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor | np.ndarray) -> None:
        self.x, self.y = x, torch.as_tensor(y, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], int(self.y[i])


class SmallCNN(nn.Module):
    def __init__(
        self, in_channels: int = 1, width: int = 32, num_classes: int = 10, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
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
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(torch.flatten(self.features(x), 1)))


def fit(
    model: nn.Module,
    dataset: Dataset,
    *,
    epochs: int = 10,
    lr: float = 2e-3,
    batch_size: int = 64,
    seed: int = 0,
    loss_fn: Callable | None = None,
    optimizer: Callable[[nn.Module], torch.optim.Optimizer] | None = None,
) -> nn.Module:
    """A plain supervised loop (the 'user's training script' of a small case), on detective's
    one step loop (`detective.analysis.training.fit_batches`)."""
    from detective.analysis.training import fit_batches

    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)
    opt = optimizer(model) if optimizer else torch.optim.AdamW(model.parameters(), lr=lr)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    model.train()
    # One intra-op thread: these models are tiny (threads only add synchronisation), and the
    # trained weights are then the same whichever thread, process or machine trains them.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(epochs):
            fit_batches(model, loader, opt, loss_fn)
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def cached_model(
    key: str, build: Callable[[], nn.Module], train: Callable[[nn.Module], Any]
) -> nn.Module:
    """build() a model; train it once with train(model), cache the weights under `key`.

    The key should change whenever the data, the model or the recipe change (hash the case file).
    Loads with weights_only=True; writes atomically so a killed run leaves no half file.
    """
    from detective.analysis.torchutil import safe_load

    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = cache_dir() / f"model-{digest}.pt"
    torch.manual_seed(0)  # the initial weights too: the same key always trains the same model
    model = build()
    if path.exists():
        model.load_state_dict(safe_load(path))
        return model.eval()
    train(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return model.eval()


def file_key(path: str | Path, *extra: object) -> str:
    """A cache key from a case file's bytes (and anything else that changes the model)."""
    return hashlib.sha256(Path(path).read_bytes() + repr(extra).encode()).hexdigest()
