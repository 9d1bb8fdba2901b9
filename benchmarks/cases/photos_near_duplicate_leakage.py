"""Near-duplicate leakage (photos): the crop dataset was built by cutting crops anywhere in the
photos and then adding the 'augmented' copies an earlier pipeline exported (shifted by a pixel
or two, some mirrored); the random split came afterwards, so many val crops have a near twin in
train. Val accuracy overstates what the model does on photo regions it has never seen."""

import _synth
import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "train_val_leakage"
SYMPTOM = "good_offline_bad_in_production"
FAMILY = "photos"
BUG = "shifted/mirrored copies of crops exported alongside them before the random split"

CLASSES = list(_synth.PHOTOS)
NORMALIZATION = {"mean": [0.5, 0.45, 0.4], "std": [0.25, 0.25, 0.25]}
TRAIN = {"epochs": 6, "batch_size": 64, "lr": 2e-3, "seed": 0}


class PhotoCrops(Dataset):
    """The team's loader: (transformed PIL crop, label) from an (N, 32, 32, 3) uint8 array."""

    def __init__(self, crops, labels, transform=None):
        self.crops, self.labels, self.transform = crops, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = Image.fromarray(self.crops[i])
        return (self.transform(image) if self.transform else image), int(self.labels[i])


def _splits():
    x, y = _synth.photo_crops("train", 260, seed=23, cut=1.0)  # crops from anywhere
    rng = np.random.default_rng(4)
    again = rng.choice(len(y), size=len(y) // 2, replace=False)
    shifted = np.stack([np.roll(x[i], tuple(rng.integers(-2, 3, 2)), axis=(0, 1)) for i in again])
    mirror = rng.random(len(again)) < 0.5
    shifted[mirror] = shifted[mirror][:, :, ::-1]
    x, y = np.concatenate([x, shifted]), np.concatenate([y, y[again]])
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    cut = int(len(y) * 0.75)
    return {"train": (x[:cut], y[:cut]), "val": (x[cut:], y[cut:])}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), norm]),
            "eval": T.Compose([T.ToTensor(), norm])}  # fmt: skip


def raw_datasets():
    return {k: PhotoCrops(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": PhotoCrops(*s["train"], tf["train"]),
            "val": PhotoCrops(*s["val"], tf["eval"])}  # fmt: skip


def fresh_model():
    return kit.SmallCNN(in_channels=3, width=16, num_classes=len(CLASSES))


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], lr=TRAIN["lr"]),
    )  # fmt: skip
