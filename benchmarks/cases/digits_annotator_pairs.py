"""Systematic annotator confusion: one of the labelling contractors reads a hastily written 7 as
a 1 and a 9 as a 4. A third of each is labelled as the other class, in train and val alike
(the val set went through the same contractor), so the model learns the confusion and the val
metric measures agreement with it."""

import numpy as np
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "label_noise"
SYMPTOM = "both_low"
FAMILY = "digits"
BUG = "35% of 7s labelled 1 and 35% of 9s labelled 4, in both splits"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}
CONFUSED = {7: 1, 9: 4}


def _annotate(y, seed):
    rng = np.random.default_rng(seed)
    y = y.copy()
    for true, given in CONFUSED.items():
        idx = np.flatnonzero(y == true)
        y[rng.choice(idx, int(len(idx) * 0.35), replace=False)] = given
    return y


def _splits():
    return {k: (x, _annotate(y, 50 + n))
            for n, (k, (x, y)) in enumerate(kit.digits_splits(seed=6).items())}  # fmt: skip


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), norm]),
            "eval": T.Compose([T.ToTensor(), norm])}  # fmt: skip


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": kit.ArrayImages(*s["train"], tf["train"]),
            "val": kit.ArrayImages(*s["val"], tf["eval"])}  # fmt: skip


def fresh_model():
    return kit.SmallCNN(width=24)


def model():
    return kit.cached_model(
        kit.file_key(__file__), fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )  # fmt: skip
