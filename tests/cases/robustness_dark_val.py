"""Planted: the model was trained only on bright images (digits on a lifted, grey background);
30 % of val are the ordinary dark-background scans, which training never showed it.

Darkening the bright val images reaches brightness levels those dark val images really have,
and the model collapses there: the robustness sweep must call it a distribution shift.
"""

import numpy as np
import torch
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.55], "std": [0.2]}
TRAIN = {"epochs": 6, "batch_size": 64, "lr": 2e-3, "seed": 0}
DARK_SHARE = 0.3


def _lift(x: np.ndarray) -> np.ndarray:
    """Background 0 → 128, ink stays at most 255: a bright image of the same digit."""
    return (128 + x.astype(float) * (127 / 255)).round().astype(np.uint8)


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


def fresh_model(seed: int = TRAIN["seed"]):
    torch.manual_seed(seed)
    return kit.SmallCNN()


def _fit(m, seed: int = TRAIN["seed"]):
    """The train split through its (deterministic) transform once, then a plain loop on tensors."""
    data = datasets()["train"]
    x = torch.stack([data[i][0] for i in range(len(data))])
    y = torch.as_tensor(data.labels)
    return kit.fit(m, kit.TensorImages(x, y), epochs=TRAIN["epochs"], lr=TRAIN["lr"], seed=seed)


def model():
    return kit.cached_model(kit.file_key(__file__), fresh_model, _fit)
