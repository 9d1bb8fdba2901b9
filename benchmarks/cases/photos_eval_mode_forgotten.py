"""Forgotten model.eval() with batch norm (photos): the small batch-norm CNN is scored by a
notebook cell that never calls eval() and feeds the val crops in batches of 4, so batch norm
normalizes with four-crop statistics. The number it prints (reported_metric) is well below the
model's."""

import _synth
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "eval_mode_bug"
SYMPTOM = "train_high_val_low"
FAMILY = "photos"
BUG = "eval cell runs the model in train() mode, batch 4"

CLASSES = list(_synth.PHOTOS)
NORMALIZATION = {"mean": [0.5, 0.45, 0.4], "std": [0.25, 0.25, 0.25]}
TRAIN = {"epochs": 6, "batch_size": 64, "lr": 2e-3, "seed": 0}


class PhotoCrops(Dataset):
    """The team's loader: (transformed PIL crop, label) from an (N, 32, 32, 3) uint8 array."""

    def __init__(self, crops, labels, transform=None):
        self.crops, self.labels, self.transform = crops, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = Image.fromarray(self.crops[i])
        return (self.transform(image) if self.transform else image), int(self.labels[i])


def _splits():
    return {"train": _synth.photo_crops("train", 300, seed=100),
            "val": _synth.photo_crops("val", 100, seed=101)}  # fmt: skip


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), norm]),
            "eval": T.Compose([T.ToTensor(), norm])}  # fmt: skip


def raw_datasets():
    return {k: PhotoCrops(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": PhotoCrops(*s["train"], tf["train"]),
            "val": PhotoCrops(*s["val"], tf["eval"])}  # fmt: skip


def fresh_model():
    return kit.SmallCNN(in_channels=3, width=16, num_classes=len(CLASSES))


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], lr=TRAIN["lr"]),
    )  # fmt: skip


def reported_metric():
    """The notebook's eval cell, as written (no net.eval())."""
    net = model()
    net.train()
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(datasets()["val"], batch_size=4)
    hits = total = 0
    with torch.no_grad():
        for x, y in loader:
            hits += int((net(x).argmax(1) == y).sum())
            total += len(y)
    return hits / total
