"""Planted: a model fitted on 40 images, and a val split of 150 real val images plus every train
image twice — once copied, once re-exported 15 % darker (a near twin): leakage inflates val.
The train split goes through an augmenting transform, so only the raw images show the copies."""

import interventions_common as ic
import numpy as np
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

CLASSES = [str(d) for d in range(10)]
TRAIN = {"epochs": 80, "batch_size": 20, "lr": 2e-3, "seed": 0}


def _splits():
    xt, yt = ic.small_train()
    xv, yv = kit.digits_splits()["val"]
    darker = (xt * 0.85).round().astype(np.uint8)
    x = np.concatenate([xv[:150], xt, darker])
    y = np.concatenate([yv[:150], yt, yt])
    return {"train": (xt, yt), "val": (x, y)}


def transforms():
    tf = ic.clean().transforms()["eval"]
    return {"train": T.Compose([T.RandomAffine(degrees=8), tf]), "eval": tf}


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf = transforms()
    s = _splits()
    return {"train": kit.ArrayImages(*s["train"], tf["train"]),
            "val": kit.ArrayImages(*s["val"], tf["eval"])}


def model():
    return ic.small_model()
