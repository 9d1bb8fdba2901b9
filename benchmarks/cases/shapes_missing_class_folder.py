"""A class folder missing in val (shapes): images are stored ImageFolder-style, one folder per
shape, and each split's loader numbers the folders it finds in sorted order. The val export lost
its `circle/` folder, so in val `cross` becomes class 0, `ellipse` class 1, and so on: every val
label is shifted against the class indices the model was trained with."""

import _synth
import numpy as np
from torch import nn
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "label_misalignment"
SYMPTOM = "train_high_val_low"
FAMILY = "shapes"
BUG = "val has no circle/ folder, so its sorted folder indices are shifted by one"

CLASSES = sorted(_synth.SHAPES)  # the training folders, in the order the loader numbers them
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


def _folders(split):
    """{folder name: images} as the export wrote them."""
    x, y = _synth.shapes(n_per_class=300, size=16, noise=30.0, seed=13)
    cut = int(len(y) * 0.8)
    x, y = (x[:cut], y[:cut]) if split == "train" else (x[cut:], y[cut:])
    folders = {name: x[y == i] for i, name in enumerate(_synth.SHAPES)}
    if split == "val":
        del folders["circle"]  # lost in the export
    return folders


def _image_folder(split):
    """What an ImageFolder does: classes = the folders found, sorted, numbered 0..k-1."""
    folders = _folders(split)
    names = sorted(folders)
    x = np.concatenate([folders[n] for n in names])
    y = np.concatenate([np.full(len(folders[n]), i, np.int64) for i, n in enumerate(names)])
    order = np.random.default_rng(0).permutation(len(y))
    return x[order], y[order]


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), norm]),
            "eval": T.Compose([T.ToTensor(), norm])}  # fmt: skip


def raw_datasets():
    return {k: kit.ArrayImages(*_image_folder(k)) for k in ("train", "val")}


def datasets():
    tf = transforms()
    return {"train": kit.ArrayImages(*_image_folder("train"), tf["train"]),
            "val": kit.ArrayImages(*_image_folder("val"), tf["eval"])}  # fmt: skip


def fresh_model():
    return ShapeNet()


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], lr=TRAIN["lr"]),
    )  # fmt: skip
