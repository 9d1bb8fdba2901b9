"""Planted: the val tree has no folder for class 3, so ImageFolder shifts every later class's
index down by one (val images of 4 are labelled 3, …, of 9 labelled 8)."""

import interventions_common as ic
import numpy as np

from detective.casekit.demo import kit

CLASSES = [str(d) for d in range(10)]
TRAIN = {"epochs": 10, "batch_size": 64, "lr": 2e-3, "seed": 0}


def _val():
    x, y = kit.digits_splits()["val"]
    keep = y != 3
    x, y = x[keep], y[keep]
    return x, np.where(y > 3, y - 1, y)


def datasets():
    tf = ic.clean().transforms()
    return {"train": ic.clean().datasets()["train"], "val": kit.ArrayImages(*_val(), tf["eval"])}


def model():
    return ic.clean().model()
