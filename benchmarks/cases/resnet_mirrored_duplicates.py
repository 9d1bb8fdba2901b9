"""Near-duplicates across splits, mirrored and cropped (resnet): the val set was topped up from
an augmented copy of the training set that someone had saved to disk. 35 % of the val views
are training views flipped left-right and re-cropped by a couple of pixels, with their labels,
so val accuracy overstates what the model does on new pixels."""

import _synth
import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "train_val_leakage"
SYMPTOM = "good_offline_bad_in_production"
FAMILY = "resnet"
BUG = "35% of val are mirrored, re-cropped train views"

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


def _augmented_copy(images, rng):
    """The saved augmentation: a horizontal flip and a 2-px re-crop, resized back."""
    out = []
    for img in images:
        y0, x0 = rng.integers(0, 3, 2)
        crop = Image.fromarray(img[::, ::-1][y0 : y0 + 30, x0 : x0 + 30])
        out.append(np.asarray(crop.resize((32, 32), Image.BILINEAR)))
    return np.stack(out)


def _splits():
    xt, yt = _synth.scene_crops("train", 150, size=32, seed=62)
    xv, yv = _synth.scene_crops("val", 25, size=32, seed=63)
    rng = np.random.default_rng(3)
    n = int(len(yv) * 0.35)
    pick = rng.choice(len(yt), n, replace=False)
    xv = np.concatenate([xv[n:], _augmented_copy(xt[pick], rng)])
    yv = np.concatenate([yv[n:], yt[pick]])
    return {"train": (xt, yt), "val": (xv, yv)}


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
    return torch.optim.AdamW(model.parameters(), lr=TRAIN["lr"],
                             weight_decay=TRAIN["weight_decay"])  # fmt: skip


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], optimizer=optimizer),
    )  # fmt: skip
