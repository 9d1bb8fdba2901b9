"""Planted: 40 % of the train labels were written in another order than their images (a second
export batch sorted by another key); val is aligned. Train accuracy is low, val is fine."""

from pathlib import Path

import interventions_common as ic
import numpy as np

from detective.casekit.demo import kit

CLASSES = [str(d) for d in range(10)]
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def _train():
    x, y = kit.digits_splits()["train"]
    y = y.copy()
    second = np.arange(len(y)) >= int(len(y) * 0.6)
    y[second] = np.random.default_rng(7).permutation(y[second])
    return x, y


def datasets():
    tf = ic.clean().transforms()
    return {"train": kit.ArrayImages(*_train(), tf["train"]), "val": ic.clean().datasets()["val"]}


def model():
    tf = ic.clean().transforms()["train"]
    return kit.cached_model(
        kit.file_key(Path(__file__)),
        kit.SmallCNN,
        lambda m: kit.fit(m, kit.ArrayImages(*_train(), tf), epochs=8),
    )
