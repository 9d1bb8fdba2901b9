"""Planted: the checkpoint was trained on inputs normalized with NORMALIZATION, but the new loader
feeds raw 0..255 floats (PILToTensor + float, no /255, no Normalize) at train and eval alike."""

import torch
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 10, "batch_size": 64, "lr": 2e-3, "seed": 0}


def transforms():
    to_float = T.Compose([T.PILToTensor(), T.Lambda(lambda t: t.to(torch.float32))])
    return {"train": to_float, "eval": to_float}


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in kit.digits_splits().items()}


def datasets():
    tf, s = transforms(), kit.digits_splits()
    return {k: kit.ArrayImages(*s[k], tf["eval"]) for k in ("train", "val")}


def fresh_model():
    return kit.SmallCNN()


def _normalized_train():
    norm = T.Compose([T.ToTensor(), T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])])
    return kit.ArrayImages(*kit.digits_splits()["train"], norm)


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(m, _normalized_train(), epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )
