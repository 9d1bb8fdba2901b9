"""Planted: an annotator confuses 7 with 1: 35 % of the 7s are labelled 1, in train and val
alike (the model was trained on those labels)."""

import errors_common as ec
import numpy as np

from detective.casekit.demo import kit

CLASSES = ec.clean().CLASSES
NORMALIZATION = ec.clean().NORMALIZATION
TRAIN = ec.clean().TRAIN
TRUE, GIVEN, RATE = 7, 1, 0.35


def _noisy(split):
    x, y = kit.digits_splits()[split]
    rng = np.random.default_rng(5)
    y = y.copy()
    y[(y == TRUE) & (rng.random(len(y)) < RATE)] = GIVEN
    return x, y


def transforms():
    return ec.clean().transforms()


def datasets():
    tf = transforms()
    return {
        "train": kit.ArrayImages(*_noisy("train"), tf["train"]),
        "val": kit.ArrayImages(*_noisy("val"), tf["eval"]),
    }


def fresh_model():
    return kit.SmallCNN()


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )
