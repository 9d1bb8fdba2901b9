"""Learning rate too high (shapes): Adam at 0.2, a value carried over from an SGD config. The
loss jumps around and the small CNN ends far from what it reaches at 3e-3."""

import _synth
from torch import nn
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "lr_too_high"
SYMPTOM = "low_train_acc"
FAMILY = "shapes"
BUG = "Adam learning rate 0.2 instead of ~3e-3"

CLASSES = list(_synth.SHAPES)
NORMALIZATION = {"mean": [0.25], "std": [0.3]}
TRAIN = {"epochs": 10, "batch_size": 32, "lr": 0.2, "seed": 0}


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
    x, y = _synth.shapes(n_per_class=300, size=16, noise=30.0, seed=15)
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
