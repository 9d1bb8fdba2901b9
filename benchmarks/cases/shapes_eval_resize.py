"""Eval transform mismatch (shapes): the evaluation transform was copied from the deployment
config of the 32-pixel model, so val shapes are upsampled 16 -> 32 px before the CNN sees them,
while training used the native 16-px frames. Global pooling lets it run without an error."""

import _synth
from torch import nn
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "preprocessing_parity"
SYMPTOM = "train_high_val_low"
FAMILY = "shapes"
BUG = "eval transform resizes to 32 px; training uses the 16-px frames"

CLASSES = list(_synth.SHAPES)
NORMALIZATION = {"mean": [0.25], "std": [0.3]}
TRAIN = {"epochs": 10, "batch_size": 32, "lr": 3e-3, "seed": 0}


class ShapeNet(nn.Module):
    def __init__(self, n=5):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(32, n),
        )  # fmt: skip

    def forward(self, x):
        return self.body(x)


def _splits():
    x, y = _synth.shapes(n_per_class=300, size=16, noise=30.0, seed=12)
    cut = int(len(y) * 0.8)
    return {"train": (x[:cut], y[:cut]), "val": (x[cut:], y[cut:])}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), norm]),
        "eval": T.Compose([T.Resize(32), T.ToTensor(), norm]),  # from the 32-px model's config
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
