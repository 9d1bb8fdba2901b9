"""Frozen parameters: the fine-tuning script's 'freeze the backbone' line stayed in when the
team switched to training from scratch, so the randomly initialised convolutions never learn;
only the final linear layer trains on random features."""

import torch
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "frozen_parameters"
SYMPTOM = "low_train_acc"
FAMILY = "digits"
BUG = "requires_grad=False on a randomly initialised backbone"

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


def fresh_model():
    torch.manual_seed(TRAIN["seed"])
    model = kit.SmallCNN()
    for p in model.features.parameters():  # left over from fine-tuning a pretrained backbone
        p.requires_grad = False
    return model


def optimizer(model):
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=TRAIN["lr"])


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], optimizer=optimizer),
    )
