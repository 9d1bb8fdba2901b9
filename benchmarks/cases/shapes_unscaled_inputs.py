"""Unscaled inputs (shapes): the team's inspection-camera shapes are read straight from the
sensor's uint8 frames with `torch.from_numpy(...).float()` -- no /255, no Normalize -- in training
and evaluation alike, and the recipe is the team's usual SGD with momentum. The first layer sees
values up to 255, the updates are hundreds of times too large, and the small CNN never settles."""

import _synth
import torch
from torch import nn
from torch.utils.data import Dataset

from detective.casekit.demo import kit

EXPECTED = "normalization_mismatch"
SYMPTOM = "both_low"
FAMILY = "shapes"
BUG = "uint8 frames fed as 0..255 floats (no scaling, no Normalize)"

CLASSES = list(_synth.SHAPES)
NORMALIZATION = {"mean": [0.25], "std": [0.3]}  # what the model card says it expects
TRAIN = {"epochs": 8, "batch_size": 32, "lr": 0.02, "seed": 0}


class SensorFrames(Dataset):
    """The team's loader: (1, H, W) float tensors straight from the frames."""

    def __init__(self, frames, labels):
        self.frames, self.labels = frames, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return torch.from_numpy(self.frames[i]).float()[None], int(self.labels[i])


class ShapeNet(nn.Module):
    def __init__(self, n=5):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(32, n),
        )  # fmt: skip

    def forward(self, x):
        return self.body(x)


def _splits():
    x, y = _synth.shapes(n_per_class=300, size=16, noise=30.0, seed=11)
    cut = int(len(y) * 0.8)
    return {"train": (x[:cut], y[:cut]), "val": (x[cut:], y[cut:])}


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}


def datasets():
    return {k: SensorFrames(x, y) for k, (x, y) in _splits().items()}


def fresh_model():
    return ShapeNet()


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=TRAIN["lr"], momentum=0.9)


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], optimizer=optimizer),
    )  # fmt: skip
