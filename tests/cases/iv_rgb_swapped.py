"""Planted: the val loader decodes images as BGR (channel order reversed)."""

import interventions_common as ic

from detective.casekit.demo import kit

CLASSES = [str(d) for d in range(10)]
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def transforms():
    return ic.rgb_transforms()


def datasets():
    tf = transforms()
    s = ic.rgb_splits()
    x, y = s["val"]
    return {"train": kit.ArrayImages(*s["train"], tf["train"]),
            "val": kit.ArrayImages(x[..., ::-1].copy(), y, tf["eval"])}


def model():
    return ic.rgb_model()
