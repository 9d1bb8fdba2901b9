"""Learning rate too high (photos): AdamW at 0.3 on the batch-norm CNN, a value pasted from an SGD
recipe. Training thrashes and ends far below what the same model reaches at 2e-3."""

import _synth
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "lr_too_high"
SYMPTOM = "both_low"
FAMILY = "photos"
BUG = "AdamW learning rate 0.3 instead of ~2e-3"

CLASSES = list(_synth.PHOTOS)
NORMALIZATION = {"mean": [0.5, 0.45, 0.4], "std": [0.25, 0.25, 0.25]}
TRAIN = {"epochs": 6, "batch_size": 64, "lr": 0.3, "seed": 0}


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
    return {"train": _synth.photo_crops("train", 300, seed=26),
            "val": _synth.photo_crops("val", 100, seed=27)}  # fmt: skip


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
