"""Planted: 15 % of the val files are decoded as blank (all-zero) images by a broken loader."""

import interventions_common as ic
import numpy as np

from detective.casekit.demo import kit

CLASSES = [str(d) for d in range(10)]
TRAIN = {"epochs": 10, "batch_size": 64, "lr": 2e-3, "seed": 0}


def datasets():
    tf = ic.clean().transforms()["eval"]
    x, y = kit.digits_splits()["val"]
    x = x.copy()
    rng = np.random.default_rng(3)
    x[rng.choice(len(y), int(0.15 * len(y)), replace=False)] = 0
    return {"train": ic.clean().datasets()["train"], "val": kit.ArrayImages(x, y, tf)}


def model():
    return ic.clean().model()
