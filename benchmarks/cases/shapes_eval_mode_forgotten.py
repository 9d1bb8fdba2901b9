"""Forgotten model.eval() (shapes): a batch-norm and dropout CNN; the team's evaluation helper
never calls eval() and scores the val set in batches of 2, so dropout stays on and batch
norm uses two-image statistics. The number it prints (reported_metric) is far below the model's."""

import _synth
import torch
from torch import nn
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "eval_mode_bug"
SYMPTOM = "train_high_val_low"
FAMILY = "shapes"
BUG = "eval helper runs the model in train() mode, batch 2"

CLASSES = list(_synth.SHAPES)
NORMALIZATION = {"mean": [0.25], "std": [0.3]}
TRAIN = {"epochs": 10, "batch_size": 32, "lr": 3e-3, "seed": 0}


class ShapeNet(nn.Module):
    def __init__(self, n=5):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(32, n),
        )  # fmt: skip

    def forward(self, x):
        return self.body(x)


def _splits():
    x, y = _synth.shapes(n_per_class=300, size=16, noise=30.0, seed=72)
    cut = int(len(y) * 0.8)
    return {"train": (x[:cut], y[:cut]), "val": (x[cut:], y[cut:])}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), norm]),
        "eval": T.Compose([T.ToTensor(), norm]),
    }


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": kit.ArrayImages(*s["train"], tf["train"]),
            "val": kit.ArrayImages(*s["val"], tf["eval"])}  # fmt: skip


def fresh_model():
    return ShapeNet()


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], lr=TRAIN["lr"]),
    )  # fmt: skip


def reported_metric():
    """The team's evaluation helper, as written (no net.eval())."""
    net = model()
    net.train()
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(datasets()["val"], batch_size=2)
    hits = total = 0
    with torch.no_grad():
        for x, y in loader:
            hits += int((net(x).argmax(1) == y).sum())
            total += len(y)
    return hits / total
