"""Label noise (photos): the crops were sorted into photo classes by a script that guessed from
file names, wrong for about 30 % of them (train and val alike), at random. The CNN is fine."""

import _synth
import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "label_noise"
SYMPTOM = "both_low"
FAMILY = "photos"
BUG = "30% of labels in both splits replaced by a random class"

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
    rng = np.random.default_rng(6)
    out = {}
    for split, n, seed in (("train", 300, 24), ("val", 100, 25)):
        x, y = _synth.photo_crops(split, n, seed=seed)
        wrong = rng.random(len(y)) < 0.3
        out[split] = (x, np.where(wrong, rng.integers(0, len(CLASSES), len(y)), y))
    return out


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
