"""Distribution shift: the validation scans come from a second scanner that produces darker,
lower-contrast images (ink at ~45% of the training intensity). Same classes, same pipeline;
the images themselves differ between the splits."""

import numpy as np
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "distribution_shift"
SYMPTOM = "train_high_val_low"
FAMILY = "digits"
BUG = "val images at 45% of the training brightness/contrast (another scanner)"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def _splits():
    s = kit.digits_splits()
    x, y = s["val"]
    return {"train": s["train"], "val": ((x * 0.45).round().astype(np.uint8), y)}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), norm]),
        "eval": T.Compose([T.ToTensor(), norm]),
    }


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {
        "train": kit.ArrayImages(*s["train"], tf["train"]),
        "val": kit.ArrayImages(*s["val"], tf["eval"]),
    }


def fresh_model():
    return kit.SmallCNN()


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )
