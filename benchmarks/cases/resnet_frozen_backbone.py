"""Frozen backbone trained from scratch (resnet): the recipe comes from a fine-tuning tutorial that
sets requires_grad=False on everything but the final fc layer -- but here weights=None, so the
frozen backbone is random and only a linear layer on random features learns."""

import _synth
import torch
import torchvision
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "frozen_parameters"
SYMPTOM = "low_train_acc"
FAMILY = "resnet"
BUG = "backbone frozen although it was never pretrained"

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
    return {"train": _synth.scene_crops("train", 150, size=32, seed=50),
            "val": _synth.scene_crops("val", 25, size=32, seed=51)}  # fmt: skip


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
    net = torchvision.models.resnet18(weights=None, num_classes=len(CLASSES))
    for name, p in net.named_parameters():
        p.requires_grad = name.startswith("fc.")  # the tutorial's fine-tuning step
    return net


def optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=TRAIN["lr"],
                             weight_decay=TRAIN["weight_decay"])  # fmt: skip


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], optimizer=optimizer),
    )  # fmt: skip
