"""Clean control: a well-configured CNN on scans from a noisy sensor. Nothing is broken; the
noise sets a ceiling (validation in the high 80s, a small train/val gap) that no fix of the
pipeline or the recipe can lift. The tool should find nothing to act on."""

import _synth
import torch
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = None
SYMPTOM = "both_low"
FAMILY = "digits"
BUG = None

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.35], "std": [0.36]}
TRAIN = {"epochs": 6, "batch_size": 64, "lr": 2e-3, "weight_decay": 1e-2, "seed": 0}


def _splits():
    return {
        k: (_synth.noisy(x, 75.0, seed=10 + i), y)
        for i, (k, (x, y)) in enumerate(kit.digits_splits().items())
    }


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
    return kit.SmallCNN(dropout=0.3)


def optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=TRAIN["lr"], weight_decay=TRAIN["weight_decay"])


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], optimizer=optimizer),
    )
