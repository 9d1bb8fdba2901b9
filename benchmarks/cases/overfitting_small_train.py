"""Overfitting: a wide two-hidden-layer MLP (540k parameters), no augmentation, no weight decay,
trained for 60 epochs on the 300 noisy scans the team had labelled so far. It memorises the
sensor noise: training accuracy reaches 100%, validation lags far behind."""

import _synth
import numpy as np
import torch
from torch import nn
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "overfitting"
SYMPTOM = "train_high_val_low"
FAMILY = "digits"
BUG = "540k-parameter MLP, 300 noisy training images, no regularization, 60 epochs"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.34], "std": [0.35]}
TRAIN = {"epochs": 60, "batch_size": 32, "lr": 1e-3, "seed": 0}


def _splits():
    s = {
        k: (_synth.noisy(x, 60.0, seed=30 + i), y)
        for i, (k, (x, y)) in enumerate(kit.digits_splits().items())
    }
    x, y = s["train"]
    keep = np.random.default_rng(2).choice(len(y), size=300, replace=False)
    return {"train": (x[keep], y[keep]), "val": s["val"]}


def transforms():
    tf = T.Compose([T.ToTensor(), T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])])
    return {"train": tf, "eval": tf}


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {
        "train": kit.ArrayImages(*s["train"], tf["train"]),
        "val": kit.ArrayImages(*s["val"], tf["eval"]),
    }


def fresh_model(width: int = 700):
    torch.manual_seed(TRAIN["seed"])
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, 10),
    )


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(
            m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"], batch_size=32
        ),
    )
