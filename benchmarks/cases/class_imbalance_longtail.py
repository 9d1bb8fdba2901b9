"""Class imbalance: digits 5-9 come from a rare source, 1 in 12 of the others, in train and val
alike. Overall accuracy looks fine; recall on the rare classes does not."""

import numpy as np
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "class_imbalance"
SYMPTOM = "one_class_bad"
FAMILY = "digits"
BUG = "classes 5-9 have 1/12 the examples of classes 0-4 in both splits"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def _splits():
    rng = np.random.default_rng(5)
    out = {}
    for name, (x, y) in kit.digits_splits().items():
        keep = (y < 5) | (rng.random(len(y)) < 1 / 12)
        out[name] = (x[keep], y[keep])
    return out


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), norm]),
        "eval": T.Compose([T.ToTensor(), norm]),
    }


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {
        "train": kit.ArrayImages(*s["train"], tf["train"]),
        "val": kit.ArrayImages(*s["val"], tf["eval"]),
    }


def fresh_model():
    return kit.SmallCNN()


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )
