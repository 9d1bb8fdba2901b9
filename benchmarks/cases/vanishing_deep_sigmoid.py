"""Vanishing gradients: a ten-layer sigmoid MLP (a textbook architecture revived from an old
notebook) trained with plain SGD. The gradient shrinks by ~4x per sigmoid layer on its way back,
so the first layers barely move."""

import torch
from torch import nn
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "vanishing_gradients"
SYMPTOM = "low_train_acc"
FAMILY = "digits"
BUG = "10 stacked Linear+Sigmoid layers, SGD"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 0.1, "seed": 0}


class DeepSigmoidMLP(nn.Module):
    def __init__(self, depth: int = 10, width: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(), nn.Linear(64, width), nn.Sigmoid()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.Sigmoid()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=TRAIN["lr"], momentum=0.9)


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
    return DeepSigmoidMLP()


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], optimizer=optimizer),
    )
