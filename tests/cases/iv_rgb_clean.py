"""Clean: three-channel digits, the eval transform is the train transform."""

import interventions_common as ic

from detective.casekit.demo import kit

CLASSES = [str(d) for d in range(10)]
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def transforms():
    return ic.rgb_transforms()


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in ic.rgb_splits().items()}


def datasets():
    tf = transforms()
    s = ic.rgb_splits()
    return {"train": kit.ArrayImages(*s["train"], tf["train"]),
            "val": kit.ArrayImages(*s["val"], tf["eval"])}


def model():
    return ic.rgb_model()
