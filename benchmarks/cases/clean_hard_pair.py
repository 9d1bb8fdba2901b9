"""Clean control: five generated shapes, where two of them (a circle and a slightly elliptical
ellipse, at 16 pixels with sensor noise) are genuinely hard to tell apart. The model is right on
the easy classes and confuses that pair, as any model would. Nothing is broken."""

import _synth
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = None
SYMPTOM = "one_class_bad"
FAMILY = "shapes"
BUG = None

CLASSES = list(_synth.SHAPES)
NORMALIZATION = {"mean": [0.25], "std": [0.3]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def _splits():
    x, y = _synth.shapes(n_per_class=320, size=16, seed=0)
    cut = int(len(y) * 0.75)
    return {"train": (x[:cut], y[:cut]), "val": (x[cut:], y[cut:])}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), norm]),
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
    return kit.SmallCNN(width=16, num_classes=len(CLASSES))


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )
