"""Dead units in a functional-ReLU net (shapes): the CNN calls F.relu in forward() (no nn.ReLU
modules), and its conv biases are initialised at -2 by an init helper written for a gated
model. Most units never fire and never get a gradient."""

import _synth
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "dead_units"
SYMPTOM = "low_train_acc"
FAMILY = "shapes"
BUG = "F.relu CNN with conv biases initialised at -2"

CLASSES = list(_synth.SHAPES)
NORMALIZATION = {"mean": [0.25], "std": [0.3]}
TRAIN = {"epochs": 10, "batch_size": 32, "lr": 3e-3, "seed": 0}


class ShapeNet(nn.Module):
    def __init__(self, n=5):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.c3 = nn.Conv2d(32, 32, 3, padding=1)
        self.fc = nn.Linear(32, n)
        for conv in (self.c1, self.c2, self.c3):
            nn.init.constant_(conv.bias, -2.0)  # the gate init, applied to every conv

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.relu(self.c3(F.relu(self.c2(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _splits():
    x, y = _synth.shapes(n_per_class=300, size=16, noise=30.0, seed=71)
    cut = int(len(y) * 0.8)
    return {"train": (x[:cut], y[:cut]), "val": (x[cut:], y[cut:])}


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
