"""Underfitting: a 'mobile' variant of the CNN shrunk to two channels per layer to fit a
microcontroller budget. It trains fine, it is simply too small: training accuracy itself is low."""

import torch
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "underfitting"
SYMPTOM = "both_low"
FAMILY = "digits"
BUG = "SmallCNN with width=2 (far too little capacity)"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), norm]),
        "eval": T.Compose([T.ToTensor(), norm]),
    }


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in kit.digits_splits().items()}


def datasets():
    tf, s = transforms(), kit.digits_splits()
    return {
        "train": kit.ArrayImages(*s["train"], tf["train"]),
        "val": kit.ArrayImages(*s["val"], tf["eval"]),
    }


def fresh_model(width: int = 2):
    torch.manual_seed(TRAIN["seed"])
    return kit.SmallCNN(width=width)


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )
