"""The optimizer trains only part of the model: the training script was adapted from a
fine-tuning notebook and still builds its optimizer over `model.head.parameters()`. The
convolutional layers keep their random initial weights; only the linear head learns."""

import torch
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "frozen_parameters"
SYMPTOM = "low_train_acc"
FAMILY = "digits"
BUG = "optimizer built over the head's parameters only"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), norm]),
            "eval": T.Compose([T.ToTensor(), norm])}  # fmt: skip


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in kit.digits_splits(seed=9).items()}


def datasets():
    tf, s = transforms(), kit.digits_splits(seed=9)
    return {"train": kit.ArrayImages(*s["train"], tf["train"]),
            "val": kit.ArrayImages(*s["val"], tf["eval"])}  # fmt: skip


def fresh_model():
    return kit.SmallCNN(width=8)


def optimizer(model):
    return torch.optim.AdamW(model.head.parameters(), lr=TRAIN["lr"])  # the bug


def model():
    return kit.cached_model(
        kit.file_key(__file__), fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], optimizer=optimizer),
    )  # fmt: skip
