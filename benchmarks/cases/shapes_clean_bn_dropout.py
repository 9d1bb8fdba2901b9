"""Clean control (shapes): a batch-norm CNN with dropout in its head, flip augmentation, the
same 16-px shapes; train and eval preprocess alike. The circle/ellipse pair is naturally hard;
nothing is broken."""

import _synth
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = None
SYMPTOM = None
FAMILY = "shapes"
BUG = None

CLASSES = list(_synth.SHAPES)
NORMALIZATION = {"mean": [0.25], "std": [0.3]}
TRAIN = {"epochs": 10, "batch_size": 32, "lr": 3e-3, "seed": 0}


def _splits():
    x, y = _synth.shapes(n_per_class=300, size=16, noise=30.0, seed=16)
    cut = int(len(y) * 0.8)
    return {"train": (x[:cut], y[:cut]), "val": (x[cut:], y[cut:])}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose(
            [T.RandomHorizontalFlip(), T.RandomAffine(degrees=10), T.ToTensor(), norm]
        ),
        "eval": T.Compose([T.ToTensor(), norm]),
    }


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": kit.ArrayImages(*s["train"], tf["train"]),
            "val": kit.ArrayImages(*s["val"], tf["eval"])}  # fmt: skip


def fresh_model():
    return kit.SmallCNN(width=16, num_classes=len(CLASSES), dropout=0.3)


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], lr=TRAIN["lr"]),
    )  # fmt: skip
