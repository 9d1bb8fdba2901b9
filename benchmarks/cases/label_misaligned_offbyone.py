"""Labels misaligned: the loader reads images from the image list and labels from a CSV
whose header row it forgot to skip, so image i gets the label of image i-1. The raw datasets
(written for looking at the data) read the source pairs correctly."""

import numpy as np
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "label_misalignment"
SYMPTOM = "low_train_acc"
FAMILY = "digits"
BUG = "training labels shifted by one item relative to their images"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


class CsvLabelled(Dataset):
    """The user's loader: images by position, labels from a CSV column read with its header."""

    def __init__(self, images, labels, transform):
        self.images = images
        self.labels = np.concatenate([[0], labels])  # the header row parsed as label 0
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return kit.ArrayImages(self.images[i : i + 1], self.labels[i : i + 1], self.transform)[0]


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), norm]),
        "eval": T.Compose([T.ToTensor(), norm]),
    }


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in kit.digits_splits().items()}


def datasets():
    tf, s = transforms(), kit.digits_splits()
    return {
        "train": CsvLabelled(*s["train"], tf["train"]),
        "val": CsvLabelled(*s["val"], tf["eval"]),
    }


def fresh_model():
    return kit.SmallCNN()


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )
