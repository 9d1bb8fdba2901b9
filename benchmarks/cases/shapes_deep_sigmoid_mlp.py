"""Vanishing gradients (shapes): an eight-layer MLP with sigmoid activations (the team's
'classic' baseline), default init, plain SGD. The gradient reaching the first layers is
orders of magnitude smaller than at the head; the network barely leaves chance."""

import _synth
import torch
from torch import nn
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "vanishing_gradients"
SYMPTOM = "low_train_acc"
FAMILY = "shapes"
BUG = "8 sigmoid layers, default init, SGD"

CLASSES = list(_synth.SHAPES)
NORMALIZATION = {"mean": [0.25], "std": [0.3]}
TRAIN = {"epochs": 10, "batch_size": 32, "lr": 0.05, "seed": 0}


class ShapeNet(nn.Module):
    def __init__(self, n=5, depth=8, width=128):
        super().__init__()
        layers, d = [nn.Flatten()], 16 * 16
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.Sigmoid()]
            d = width
        self.body = nn.Sequential(*layers, nn.Linear(d, n))

    def forward(self, x):
        return self.body(x)


def _splits():
    x, y = _synth.shapes(n_per_class=300, size=16, noise=30.0, seed=70)
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


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=TRAIN["lr"])


def fresh_model():
    return ShapeNet()


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], optimizer=optimizer),
    )  # fmt: skip
