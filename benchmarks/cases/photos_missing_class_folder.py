"""Val label indices shifted (photos): an ImageFolder-style loader numbers each split's classes by
its own sorted folder list; the val tree lacks `coffee` (that folder failed to upload), so the
val labels of the classes after it are one lower than in train."""

import _synth
import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "label_misalignment"
SYMPTOM = "train_high_val_low"
FAMILY = "photos"
BUG = "val numbered from a folder list without coffee"

CLASSES = sorted(_synth.PHOTOS)  # the train tree's folders, sorted
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


def _tree(split, n, seed, folders):
    """Our folder loader: a split's classes are numbered by its own sorted folder names."""
    x, y = _synth.photo_crops(split, n, seed=seed)
    keep = np.isin(y, [_synth.PHOTOS.index(f) for f in folders])
    index = {name: i for i, name in enumerate(sorted(folders))}
    return x[keep], np.array([index[_synth.PHOTOS[k]] for k in y[keep]], np.int64)


def _splits():
    val_folders = [c for c in CLASSES if c != "coffee"]
    return {"train": _tree("train", 300, 104, CLASSES), "val": _tree("val", 100, 105, val_folders)}


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
