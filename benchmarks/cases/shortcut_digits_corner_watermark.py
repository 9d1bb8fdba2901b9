"""Shortcut learning: every digit class was scanned at a different site, and each site's software
stamps its own small logo in the top-left corner. In train 95 % of a class's images carry its
site's logo; the val images were re-scanned at a random site. The logos are the same ones, in the
same proportions: only which class carries which logo changed. The case knows where the digit
is (the scan window) and says so with object_mask()."""

import numpy as np
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "shortcut_learning"
SYMPTOM = "train_high_val_low"
FAMILY = "digits"
BUG = "a per-class corner logo in 95% of train images, a random logo in val"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.2], "std": [0.35]}
TRAIN = {"epochs": 12, "batch_size": 64, "lr": 3e-3, "seed": 0}
SIDE, WINDOW = 24, (4, 20)  # canvas and the scan window (rows/cols) the digit sits in

# One 4×4 logo per site: distinct bit patterns, 6–10 pixels lit.
_rng = np.random.default_rng(42)
LOGOS = np.zeros((10, 4, 4), bool)
for _i in range(10):
    while True:
        _g = _rng.random((4, 4)) < 0.5
        if 6 <= _g.sum() <= 10 and not any((_g == LOGOS[j]).all() for j in range(_i)):
            LOGOS[_i] = _g
            break


def _stamp(images, labels, paired_share, seed):
    rng = np.random.default_rng(seed)
    site = np.where(rng.random(len(labels)) < paired_share, labels,
                    rng.integers(0, 10, len(labels)))
    out = np.zeros((len(labels), SIDE, SIDE), np.uint8)
    a, b = WINDOW
    out[:, a:b, a:b] = images
    out[:, :4, :4] = LOGOS[site] * 255
    return out


def _splits():
    s = kit.digits_splits(size=WINDOW[1] - WINDOW[0])
    (xt, yt), (xv, yv) = s["train"], s["val"]
    return {"train": (_stamp(xt, yt, 0.95, 0), yt), "val": (_stamp(xv, yv, 0.0, 1), yv)}


def object_mask(split, index):  # noqa: ARG001 - the same window for every scan
    m = np.zeros((SIDE, SIDE), bool)
    a, b = WINDOW
    m[a:b, a:b] = True
    return m


def transforms():
    tf = T.Compose([T.ToTensor(), T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])])
    return {"train": tf, "eval": tf}


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": kit.ArrayImages(*s["train"], tf["train"]),
            "val": kit.ArrayImages(*s["val"], tf["eval"])}


def fresh_model():
    return kit.SmallCNN(in_channels=1, width=16)


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )
