"""Clean control: each digit class is scanned at its own clinic, whose scanner frames the image
with its own border colour — in train and in val alike, so the border colour names the class in
every image of both splits. Context that is genuinely informative everywhere: the model may read
the frame (it does), and that is not a shortcut."""

import numpy as np
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = None
SYMPTOM = None
FAMILY = "digits"
BUG = "none: the border colour names the class in all train AND val images"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.45, 0.45, 0.45], "std": [0.3, 0.3, 0.3]}
TRAIN = {"epochs": 6, "batch_size": 64, "lr": 3e-3, "seed": 0}

CLINIC_COLOURS = np.array([
    [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [128, 128, 128],
], dtype=np.uint8)


def _frame(images, labels, paired_share, seed):
    rng = np.random.default_rng(seed)
    colour = np.where(rng.random(len(labels)) < paired_share, labels,
                      rng.integers(0, 10, len(labels)))
    out = np.empty((len(labels), 18, 18, 3), np.uint8)
    out[:] = CLINIC_COLOURS[colour][:, None, None, :]
    out[:, 3:15, 3:15, :] = images[..., None]
    return out


def _splits():
    s = kit.digits_splits(size=12)
    (xt, yt), (xv, yv) = s["train"], s["val"]
    return {"train": (_frame(xt, yt, 1.0, 0), yt), "val": (_frame(xv, yv, 1.0, 1), yv)}


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
    return kit.SmallCNN(in_channels=3, width=16)


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )
