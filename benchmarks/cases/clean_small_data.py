"""Clean control: only 200 labelled images (20 per class), and a setup that respects it: a
narrow CNN, augmentation, weight decay, a modest number of epochs. Validation accuracy is below
what the full dataset would give, honestly so; nothing is misconfigured."""

import numpy as np
import torch
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = None
SYMPTOM = "train_high_val_low"
FAMILY = "digits"
BUG = None

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 40, "batch_size": 32, "lr": 2e-3, "weight_decay": 5e-4, "seed": 0}


def _splits():
    s = kit.digits_splits()
    x, y = s["train"]
    rng = np.random.default_rng(4)
    keep = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), 20, replace=False) for c in range(10)]
    )
    return {"train": (x[keep], y[keep]), "val": s["val"]}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomAffine(degrees=10, translate=(0.1, 0.1)), T.ToTensor(), norm]),
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


def fresh_model(width: int = 16):
    torch.manual_seed(TRAIN["seed"])
    return kit.SmallCNN(width=width)


def optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=TRAIN["lr"], weight_decay=TRAIN["weight_decay"])


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(
            m, datasets()["train"], epochs=TRAIN["epochs"], batch_size=32, optimizer=optimizer
        ),
    )
