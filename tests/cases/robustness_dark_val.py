"""Planted: the model was trained only on bright images (digits on a lifted, grey background);
30 % of val are the ordinary dark-background scans, which training never showed it.

Darkening the bright val images reaches brightness levels those dark val images really have,
and the model collapses there: the robustness sweep must call it a distribution shift.
"""

import numpy as np
from torchvision import transforms as T  # noqa: N812

from detective.demo import kit

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.55], "std": [0.2]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}
DARK_SHARE = 0.3


def _lift(x: np.ndarray) -> np.ndarray:
    """Background 0 → 100, ink stays at most 255: a bright image of the same digit."""
    return (100 + x.astype(float) * (155 / 255)).round().astype(np.uint8)


def _splits():
    s = kit.digits_splits()
    (xt, yt), (xv, yv) = s["train"], s["val"]
    rng = np.random.default_rng(3)
    dark = np.sort(rng.choice(len(yv), int(round(DARK_SHARE * len(yv))), replace=False))
    val = _lift(xv)
    val[dark] = xv[dark]
    return {"train": (_lift(xt), yt), "val": (val, yv)}, dark


DARK = _splits()[1]


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.ToTensor(), norm]), "eval": T.Compose([T.ToTensor(), norm])}


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits()[0].items()}


def datasets():
    tf = transforms()
    s = _splits()[0]
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
