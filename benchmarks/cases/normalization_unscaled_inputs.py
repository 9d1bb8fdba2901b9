"""Normalization mismatch: the backbone checkpoint from the team's model zoo was trained on inputs
normalized with NORMALIZATION, but the new data loader feeds raw 0..255 pixel values
(PILToTensor + float, no scaling, no Normalize) at train and eval time alike."""

import torch
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "normalization_mismatch"
SYMPTOM = "both_low"
FAMILY = "digits"
BUG = "inputs reach the model as 0..255 floats; the checkpoint expects normalized inputs"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}  # what the zoo checkpoint was trained with
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def transforms():
    to_float = T.Compose([T.PILToTensor(), T.Lambda(lambda t: t.to(torch.float32))])
    return {"train": to_float, "eval": to_float}


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in kit.digits_splits().items()}


def datasets():
    tf, s = transforms(), kit.digits_splits()
    return {
        "train": kit.ArrayImages(*s["train"], tf["train"]),
        "val": kit.ArrayImages(*s["val"], tf["eval"]),
    }


def fresh_model():
    return kit.SmallCNN()


def _zoo_training(m):
    """How the zoo checkpoint was made: the same data, properly normalized."""
    norm = T.Compose([T.ToTensor(), T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])])
    x, y = kit.digits_splits()["train"]
    kit.fit(m, kit.ArrayImages(x, y, norm), epochs=TRAIN["epochs"], lr=TRAIN["lr"])


def model():
    return kit.cached_model(kit.file_key(__file__), fresh_model, _zoo_training)
