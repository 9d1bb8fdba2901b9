"""A failing slice: one in eight scans (in both splits) came off a worn-out scanner: faint,
blurred and noisy. The model does well overall and fails on that identifiable slice."""

import numpy as np
from PIL import Image, ImageFilter
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "slice_failure"
SYMPTOM = "one_class_bad"
FAMILY = "digits"
BUG = "12% of images faint (x0.35), blurred and noisy, in both splits"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.29], "std": [0.36]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def _worn(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    blurred = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(1.0)), np.float64)
    out = blurred * 0.35 + rng.normal(0, 18, img.shape) + 10
    return np.clip(out, 0, 255).round().astype(np.uint8)


def _splits():
    rng = np.random.default_rng(9)
    out = {}
    for name, (x, y) in kit.digits_splits().items():
        x = x.copy()
        for i in np.flatnonzero(rng.random(len(y)) < 0.12):
            x[i] = _worn(x[i], rng)
        out[name] = (x, y)
    return out


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
