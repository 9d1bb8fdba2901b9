"""Near-duplicates across splits, shifted: the val set was assembled from a second export of the
same scanning session, in which the scanner's crop was one pixel off. A third of the val images
are training images moved by one pixel (and lightly re-quantised), with the same labels, so val
accuracy flatters the model; the production number is lower."""

import numpy as np
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "train_val_leakage"
SYMPTOM = "good_offline_bad_in_production"
FAMILY = "digits"
BUG = "a third of val are train images shifted by one pixel"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 10, "batch_size": 64, "lr": 2e-3, "seed": 0}


def _splits():
    s = kit.digits_splits(test_size=0.5, seed=11)
    (xt, yt), (xv, yv) = s["train"], s["val"]
    rng = np.random.default_rng(11)
    n = len(yv) // 3
    pick = rng.choice(len(yt), n, replace=False)
    shifted = np.roll(xt[pick], shift=1, axis=int(rng.integers(1, 3)))
    shifted = np.clip(shifted.astype(int) + rng.integers(-6, 7, shifted.shape), 0, 255)
    xv = np.concatenate([xv[n:], shifted.astype(np.uint8)])
    yv = np.concatenate([yv[n:], yt[pick]])
    return {"train": (xt, yt), "val": (xv, yv)}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.ToTensor(), norm]), "eval": T.Compose([T.ToTensor(), norm])}


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": kit.ArrayImages(*s["train"], tf["train"]),
            "val": kit.ArrayImages(*s["val"], tf["eval"])}  # fmt: skip


def fresh_model():
    return kit.SmallCNN(width=16, dropout=0.2)


def model():
    return kit.cached_model(
        kit.file_key(__file__), fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )  # fmt: skip
