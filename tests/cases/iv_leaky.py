"""Planted: a model fitted on 40 images, and a val split of 150 real val images plus every train
image twice — once copied, once re-exported 15 % darker (a near twin): leakage inflates val."""

import interventions_common as ic
import numpy as np

from detective.casekit.demo import kit

CLASSES = [str(d) for d in range(10)]
TRAIN = {"epochs": 80, "batch_size": 20, "lr": 2e-3, "seed": 0}


def datasets():
    tf = ic.clean().transforms()["eval"]
    xt, yt = ic.small_train()
    xv, yv = kit.digits_splits()["val"]
    darker = (xt * 0.85).round().astype(np.uint8)
    x = np.concatenate([xv[:150], xt, darker])
    y = np.concatenate([yv[:150], yt, yt])
    return {"train": kit.ArrayImages(xt, yt, tf), "val": kit.ArrayImages(x, y, tf)}


def model():
    return ic.small_model()
