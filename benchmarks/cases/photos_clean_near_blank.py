"""Clean control (photos, near-blank images): five photo classes, one of them the Hubble deep
field, whose crops are mostly near-black sky with a few faint galaxies; the astronaut, rocket and
coffee photos also have flat, nearly uniform regions. Many crops are near-blank and some classes
are genuinely hard to tell apart there; the model is as good as the data allows. Nothing is
broken."""

import _synth
import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = None
SYMPTOM = None
FAMILY = "photos"
BUG = None

CLASSES = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field"]
NORMALIZATION = {"mean": [0.5, 0.45, 0.4], "std": [0.25, 0.25, 0.25]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


class PhotoCrops(Dataset):
    """The team's loader: (transformed PIL crop, label) from an (N, 32, 32, 3) uint8 array."""

    def __init__(self, crops, labels, transform=None):
        self.crops, self.labels, self.transform = crops, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = Image.fromarray(self.crops[i])
        return (self.transform(image) if self.transform else image), int(self.labels[i])


def _crops(split, n, seed, size=32):
    """Crops from the top 60 % of each photo for train, the bottom 40 % for val."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label, name in enumerate(CLASSES):
        src = _synth.photo(name)
        h, w, _ = src.shape
        lo, hi = (0, int(h * 0.6) - size) if split == "train" else (int(h * 0.6), h - size)
        for _ in range(n):
            y0, x0 = rng.integers(lo, hi + 1), rng.integers(0, w - size + 1)
            xs.append(src[y0 : y0 + size, x0 : x0 + size])
            ys.append(label)
    order = rng.permutation(len(ys))
    return np.stack(xs)[order], np.asarray(ys, np.int64)[order]


def _splits():
    return {"train": _crops("train", 300, seed=30), "val": _crops("val", 100, seed=31)}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.RandomHorizontalFlip(), T.RandomAffine(0, (0.1, 0.1)),
                                T.ToTensor(), norm]),
            "eval": T.Compose([T.ToTensor(), norm])}  # fmt: skip


def raw_datasets():
    return {k: PhotoCrops(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": PhotoCrops(*s["train"], tf["train"]),
            "val": PhotoCrops(*s["val"], tf["eval"])}  # fmt: skip


def fresh_model():
    return kit.SmallCNN(in_channels=3, width=16, num_classes=len(CLASSES), dropout=0.3)


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], lr=TRAIN["lr"]),
    )  # fmt: skip
