"""Val label indices shifted (resnet): both splits are ImageFolder-style trees and each split's
class indices come from its own sorted folder list. The val export lost its `chelsea` folder,
so every val class after it is numbered one lower than in train."""

import _synth
import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "label_misalignment"
SYMPTOM = "train_high_val_low"
FAMILY = "resnet"
BUG = "val class indices from a folder list missing one class"

CLASSES = sorted(_synth.SCENES)  # the training tree's folders, as ImageFolder sorts them
NORMALIZATION = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
TRAIN = {"epochs": 5, "batch_size": 16, "lr": 1e-3, "weight_decay": 1e-4, "seed": 0}


class SceneViews(Dataset):
    """Our loader: (transformed PIL image, label) from an (N, 32, 32, 3) uint8 array."""

    def __init__(self, images, labels, transform=None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = Image.fromarray(self.images[i])
        return (self.transform(image) if self.transform else image), int(self.labels[i])


def _tree(split, n, seed, folders):
    """What ImageFolder does: each split numbers its classes by its own sorted folder list."""
    x, y = _synth.scene_crops(split, n, size=32, seed=seed, classes=tuple(CLASSES))
    keep = np.isin(y, [CLASSES.index(f) for f in folders])
    index = {name: i for i, name in enumerate(sorted(folders))}
    return x[keep], np.array([index[CLASSES[k]] for k in y[keep]], np.int64)


def _splits():
    val_folders = [c for c in CLASSES if c != "chelsea"]  # lost in the val export
    return {"train": _tree("train", 150, 60, CLASSES), "val": _tree("val", 25, 61, val_folders)}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), norm]),
            "eval": T.Compose([T.ToTensor(), norm])}  # fmt: skip


def raw_datasets():
    return {k: SceneViews(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": SceneViews(*s["train"], tf["train"]),
            "val": SceneViews(*s["val"], tf["eval"])}  # fmt: skip


def fresh_model():
    return torchvision.models.resnet18(weights=None, num_classes=len(CLASSES))


def optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=TRAIN["lr"],
                             weight_decay=TRAIN["weight_decay"])  # fmt: skip


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], optimizer=optimizer),
    )  # fmt: skip
