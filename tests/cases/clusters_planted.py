"""The clean digits model, evaluated on a val split with three planted failure modes on
disjoint subsets: darkened images, inverted images (white background), and digits shifted
three pixels sideways (normal-looking pixels, unusual position).
`PLANTED` maps a val index to its mode (0, 1, 2)."""

from pathlib import Path

import numpy as np
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 10, "batch_size": 64, "lr": 2e-3, "seed": 0}
# 85 per mode puts the error rate (~36%) and the dark slice's lift (~2.5×) well clear of the
# judge's thresholds (30%; 2× and 3×), so the expected strength cannot flip with a library release.
PER_MODE = 85


def _planted() -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    x, y = kit.digits_splits()["val"]
    x = x.copy()
    order = np.random.default_rng(0).permutation(len(y))
    modes: dict[int, int] = {}
    for mode in range(3):
        for i in order[mode * PER_MODE : (mode + 1) * PER_MODE]:
            modes[int(i)] = mode
            if mode == 0:
                x[i] = (x[i] * 0.15).astype(np.uint8)
            elif mode == 1:
                x[i] = 255 - x[i]
            else:
                x[i] = np.roll(x[i], 3, axis=1)
    return x, y, modes


PLANTED = _planted()[2]


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), norm]),
        "eval": T.Compose([T.ToTensor(), norm]),
    }


def raw_datasets():
    x, y, _ = _planted()
    return {"train": kit.ArrayImages(*kit.digits_splits()["train"]), "val": kit.ArrayImages(x, y)}


def datasets():
    tf = transforms()
    x, y, _ = _planted()
    return {
        "train": kit.ArrayImages(*kit.digits_splits()["train"], tf["train"]),
        "val": kit.ArrayImages(x, y, tf["eval"]),
    }


def fresh_model():
    return kit.SmallCNN()


def model():
    # The same data, model and recipe as digits_clean.py: share its cached weights.
    return kit.cached_model(
        kit.file_key(Path(__file__).with_name("digits_clean.py")),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )
