"""Wrong loss: the model's forward ends with a softmax (left in from an export script), and the
training loss is CrossEntropyLoss, which applies log-softmax again. Gradients are squashed,
training crawls, and the outputs are not logits."""

import torch
from torch import nn
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "wrong_loss"
SYMPTOM = "low_train_acc"
FAMILY = "digits"
BUG = "softmax in forward() before nn.CrossEntropyLoss"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 0.05, "seed": 0}


class SoftmaxCNN(kit.SmallCNN):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(super().forward(x), dim=1)


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=TRAIN["lr"], momentum=0.9)


def loss():
    return nn.CrossEntropyLoss()


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
    return SoftmaxCNN()


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], optimizer=optimizer),
    )
