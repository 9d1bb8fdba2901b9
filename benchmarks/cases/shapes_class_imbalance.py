"""Class imbalance (shapes): the triangle class was only added to the labelling tool late, so
train holds 15 triangles against 240 of every other shape; val is balanced. The model almost
never says triangle."""

import _synth
import numpy as np
from torch import nn
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "class_imbalance"
SYMPTOM = "one_class_bad"
FAMILY = "shapes"
BUG = "15 train triangles vs 240 per other class"

CLASSES = list(_synth.SHAPES)
NORMALIZATION = {"mean": [0.25], "std": [0.3]}
TRAIN = {"epochs": 10, "batch_size": 32, "lr": 3e-3, "seed": 0}


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
    x, y = _synth.shapes(n_per_class=300, size=16, noise=30.0, seed=73)
    cut = int(len(y) * 0.8)
    xt, yt = x[:cut], y[:cut]
    tri = np.flatnonzero(yt == CLASSES.index("triangle"))
    keep = np.ones(len(yt), bool)
    keep[tri[15:]] = False
    return {"train": (xt[keep], yt[keep]), "val": (x[cut:], y[cut:])}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), norm]),
        "eval": T.Compose([T.ToTensor(), norm]),
    }


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": kit.ArrayImages(*s["train"], tf["train"]),
            "val": kit.ArrayImages(*s["val"], tf["eval"])}  # fmt: skip


def fresh_model():
    return ShapeNet()


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], lr=TRAIN["lr"]),
    )  # fmt: skip
