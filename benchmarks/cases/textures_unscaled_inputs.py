"""Unscaled 0-255 inputs (textures): the team replaced ToTensor with their own `to_tensor` (a
float cast of the numpy array, no division by 255) and then applied the Normalize constants
computed for [0, 1] images. Inputs reach the network in the hundreds; with no normalization
layer to absorb that, training is unstable and ends far below what the data allows."""

import _textures
import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "normalization_mismatch"
SYMPTOM = "both_low"
FAMILY = "textures"
BUG = "pixels in 0..255 normalized with [0,1] statistics"

CLASSES = list(_textures.TEXTURES)
NORMALIZATION = {"mean": [0.45], "std": [0.25]}
TRAIN = {"epochs": 10, "batch_size": 64, "lr": 3e-3, "seed": 0}


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
    return {"train": _textures.texture_patches("train", 200, seed=86),
            "val": _textures.texture_patches("val", 60, seed=87)}  # fmt: skip


def to_tensor(image):
    """Our converter: PIL grayscale -> float tensor [1, H, W] (no division by 255: the bug)."""
    return torch.from_numpy(np.asarray(image, dtype=np.float32))[None]


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.RandomHorizontalFlip(), T.RandomVerticalFlip(),
                                T.Lambda(to_tensor), norm]),
            "eval": T.Compose([T.Lambda(to_tensor), norm])}  # fmt: skip


def raw_datasets():
    return {k: Patches(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": Patches(*s["train"], tf["train"]), "val": Patches(*s["val"], tf["eval"])}


def fresh_model():
    torch.manual_seed(TRAIN["seed"])
    return TextureNet()


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_textures.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], lr=TRAIN["lr"]),
    )  # fmt: skip
