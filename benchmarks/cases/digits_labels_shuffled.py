"""Labels shuffled against their images: the training set was exported in two batches; for the
second batch (40 % of the items) the export script wrote the image list in scan order but the
label list sorted by annotation id, so those labels belong to other images. Val came from the first
batch only and is fine."""

import numpy as np
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "label_misalignment"
SYMPTOM = "low_train_acc"
FAMILY = "digits"
BUG = "40% of train labels written in another order than their images"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def _splits():
    s = kit.digits_splits(seed=3)
    x, y = s["train"]
    second = np.arange(len(y)) >= int(len(y) * 0.6)  # the second export batch
    y = y.copy()
    y[second] = np.random.default_rng(7).permutation(y[second])  # sorted by another key
    return {"train": (x, y), "val": s["val"]}


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
