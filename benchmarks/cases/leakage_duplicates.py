"""Train/val leakage: the dataset was assembled from two scrapes that overlap, a third of the
images appear twice, and the split was made afterwards, so many validation images have an exact
twin in training. Validation accuracy overstates what the model does on new images."""

import numpy as np
from sklearn.model_selection import train_test_split
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "train_val_leakage"
SYMPTOM = "good_offline_bad_in_production"
FAMILY = "digits"
BUG = "a third of the images duplicated before the random split"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def _splits():
    s = kit.digits_splits(test_size=0.01)  # all images, then our own (leaky) split
    x = np.concatenate([s["train"][0], s["val"][0]])
    y = np.concatenate([s["train"][1], s["val"][1]])
    rng = np.random.default_rng(3)
    again = rng.choice(len(y), size=len(y) // 3, replace=False)
    x, y = np.concatenate([x, x[again]]), np.concatenate([y, y[again]])
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.25, random_state=0)
    return {"train": (x_tr, y_tr), "val": (x_va, y_va)}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), norm]),
        "eval": T.Compose([T.ToTensor(), norm]),
    }


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {
        "train": kit.ArrayImages(*s["train"], tf["train"]),
        "val": kit.ArrayImages(*s["val"], tf["eval"]),
    }


def fresh_model():
    return kit.SmallCNN()


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )
