"""Optimizer over a subset of the parameters (resnet): a refactor split the model into
`backbone` and `head` parameter groups with different learning rates, and the group list
kept only layer4 and fc. conv1 through layer3 keep their random initial weights."""

import _synth
import torch
import torchvision
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "frozen_parameters"
SYMPTOM = "train_high_val_low"
FAMILY = "resnet"
BUG = "optimizer groups cover only layer4 and fc"

CLASSES = list(_synth.SCENES)
NORMALIZATION = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
TRAIN = {"epochs": 5, "batch_size": 16, "lr": 1e-3, "weight_decay": 1e-4, "seed": 0}


class SceneViews(Dataset):
    """Our loader: (transformed PIL image, label) from an (N, 32, 32, 3) uint8 array."""

    def __init__(self, images, labels, transform=None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = Image.fromarray(self.images[i])
        return (self.transform(image) if self.transform else image), int(self.labels[i])


def _splits():
    return {"train": _synth.scene_crops("train", 150, size=32, seed=52),
            "val": _synth.scene_crops("val", 25, size=32, seed=53)}  # fmt: skip


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), norm]),
            "eval": T.Compose([T.ToTensor(), norm])}  # fmt: skip


def raw_datasets():
    return {k: SceneViews(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": SceneViews(*s["train"], tf["train"]),
            "val": SceneViews(*s["val"], tf["eval"])}  # fmt: skip


def fresh_model():
    return torchvision.models.resnet18(weights=None, num_classes=len(CLASSES))


def optimizer(model):
    groups = [{"params": model.layer4.parameters(), "lr": TRAIN["lr"]},
              {"params": model.fc.parameters(), "lr": TRAIN["lr"] * 3}]  # conv1..layer3 lost
    return torch.optim.AdamW(groups, lr=TRAIN["lr"], weight_decay=TRAIN["weight_decay"])


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], optimizer=optimizer),
    )  # fmt: skip
