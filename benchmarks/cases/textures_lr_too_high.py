"""Learning rate too high (textures): SGD with momentum 0.9 at lr 0.5 on a network without
normalization layers; the loss spikes in the first epoch and never settles."""

import _textures
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "lr_too_high"
SYMPTOM = "low_train_acc"
FAMILY = "textures"
BUG = "SGD lr 0.5, momentum 0.9, no normalization layers"

CLASSES = list(_textures.TEXTURES)
NORMALIZATION = {"mean": [0.45], "std": [0.25]}
TRAIN = {"epochs": 10, "batch_size": 64, "lr": 0.5, "seed": 0}


class Patches(Dataset):
    """Our loader: (transformed grayscale PIL patch, label)."""

    def __init__(self, patches, labels, transform=None):
        self.patches, self.labels, self.transform = patches, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = Image.fromarray(self.patches[i], mode="L")
        return (self.transform(image) if self.transform else image), int(self.labels[i])


class TextureNet(nn.Module):
    def __init__(self, n=6):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(32, n))

    def forward(self, x):
        return self.head(self.features(x))


def _splits():
    return {"train": _textures.texture_patches("train", 200, seed=84),
            "val": _textures.texture_patches("val", 60, seed=85)}  # fmt: skip


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.RandomHorizontalFlip(), T.RandomVerticalFlip(),
                                T.ToTensor(), norm]),
            "eval": T.Compose([T.ToTensor(), norm])}  # fmt: skip


def raw_datasets():
    return {k: Patches(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": Patches(*s["train"], tf["train"]), "val": Patches(*s["val"], tf["eval"])}


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=TRAIN["lr"], momentum=0.9)


def fresh_model():
    torch.manual_seed(TRAIN["seed"])
    return TextureNet()


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_textures.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], optimizer=optimizer),
    )  # fmt: skip
