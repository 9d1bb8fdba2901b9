"""Shortcut learning on texture patches (scikit-image's bundled brick, grass, gravel, moon
surface and printed-text images): each material was photographed on its own coloured tray, so in
train the background colour names the material (95 % of patches). The val patches, cut from a
part of each image train never saw, were re-shot on trays picked at random. The case knows where
the sample sits on the tray and says so with object_mask()."""

import numpy as np
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "shortcut_learning"
SYMPTOM = "train_high_val_low"
FAMILY = "textures"
BUG = "background colour tied to the material in 95% of train patches, random in val"

CLASSES = ["brick", "grass", "gravel", "moon", "text"]
NORMALIZATION = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 3e-3, "seed": 0}
SIDE, PATCH, AT = 24, 16, 4
TRAYS = np.array([[200, 40, 40], [40, 160, 60], [40, 80, 200], [220, 200, 40], [160, 60, 180]],
                 np.uint8)
PER_CLASS = {"train": 300, "val": 100}
PAIRED = {"train": 0.95, "val": 0.0}


def _source(name):
    import skimage.data

    img = getattr(skimage.data, name)().astype(np.float32)
    h, w = img.shape
    return img[: h - h % 2, : w - w % 2].reshape(h // 2, 2, w // 2, 2).mean((1, 3))  # half size


def _patches(split, seed):
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, name in enumerate(CLASSES):
        src = _source(name)
        h, w = src.shape
        cut = int(w * 0.6)  # train patches from the left 60 %, val from the rest
        lo, hi = (0, cut - PATCH) if split == "train" else (cut, w - PATCH)
        for _ in range(PER_CLASS[split]):
            y0, x0 = rng.integers(0, h - PATCH), rng.integers(lo, hi)
            images.append(src[y0 : y0 + PATCH, x0 : x0 + PATCH])
            labels.append(label)
    labels = np.array(labels)
    tray = np.where(rng.random(len(labels)) < PAIRED[split], labels,
                    rng.integers(0, len(CLASSES), len(labels)))
    out = np.empty((len(labels), SIDE, SIDE, 3), np.float32)
    out[:] = TRAYS[tray][:, None, None, :]
    out += rng.normal(0, 12, out.shape)
    out[:, AT : AT + PATCH, AT : AT + PATCH, :] = np.stack(images)[..., None]
    return np.clip(out, 0, 255).round().astype(np.uint8), labels.astype(np.int64)


def _splits():
    return {"train": _patches("train", 0), "val": _patches("val", 1)}


def object_mask(split, index):  # noqa: ARG001 - the same tray position for every patch
    m = np.zeros((SIDE, SIDE), bool)
    m[AT : AT + PATCH, AT : AT + PATCH] = True
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
    return kit.SmallCNN(in_channels=3, width=16, num_classes=len(CLASSES))


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )
