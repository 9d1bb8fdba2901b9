"""A checkpoint that outputs NaN: an MLP trained with plain SGD at a learning rate copied from a
batch-norm ResNet recipe (lr 3.0). The loss blew up within the first epoch and became NaN; the
script saves the last weights anyway, so the model under investigation answers NaN for every
image."""

import torch
from torch import nn
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "lr_too_high"
SYMPTOM = "low_train_acc"
FAMILY = "digits"
BUG = "SGD lr 3.0 on a plain MLP: the loss diverged to NaN and the NaN weights were saved"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 6, "batch_size": 32, "lr": 3.0, "seed": 0}
MOMENTUM = 0.9


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(),
                                 nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))  # fmt: skip

    def forward(self, x):
        return self.net(x)


def transforms():
    tf = T.Compose([T.ToTensor(), T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])])
    return {"train": tf, "eval": tf}


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in kit.digits_splits(seed=5).items()}


def datasets():
    tf = transforms()
    return {k: kit.ArrayImages(x, y, tf["train" if k == "train" else "eval"])
            for k, (x, y) in kit.digits_splits(seed=5).items()}  # fmt: skip


def fresh_model():
    torch.manual_seed(TRAIN["seed"])
    return MLP()


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=TRAIN["lr"], momentum=MOMENTUM)


def model():
    return kit.cached_model(
        kit.file_key(__file__), fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], optimizer=optimizer),
    )  # fmt: skip
