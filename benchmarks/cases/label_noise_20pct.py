"""Label noise: a fifth of the labels (train and val alike) were assigned at random by a rushed
annotation round. The CNN is fine; it learns the noise and is penalised for being right."""

import numpy as np
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "label_noise"
SYMPTOM = "both_low"
FAMILY = "digits"
BUG = "20% of labels in both splits replaced by a random class"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def _splits():
    rng = np.random.default_rng(7)
    out = {}
    for name, (x, y) in kit.digits_splits().items():
        y = y.copy()
        flip = rng.random(len(y)) < 0.2
        y[flip] = rng.integers(0, 10, flip.sum())
        out[name] = (x, y)
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
