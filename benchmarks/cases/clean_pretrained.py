"""Clean control, pretrained-style: a backbone pretrained on one task (colour scans of digits 0-4)
is fine-tuned end to end, at a small learning rate, on another (digits 5-9). The inputs are
normalized with the backbone's own constants (ImageNet-style, not this data's statistics), as
they should be. Nothing is broken."""

import _synth
import torch
from torch import nn
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = None
SYMPTOM = None
FAMILY = "digits"
BUG = None

CLASSES = ["5", "6", "7", "8", "9"]
NORMALIZATION = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}  # the backbone's
TRAIN = {"epochs": 5, "batch_size": 64, "lr": 5e-4, "seed": 0}


def _digits(first: int):
    """Colour scans of the five digits first..first+4, labels 0..4."""
    out = {}
    for i, (k, (x, y)) in enumerate(kit.digits_splits().items()):
        keep = (y >= first) & (y < first + 5)
        out[k] = (_synth.tinted(x[keep], seed=20 + i + first), y[keep] - first)
    return out


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), norm]),
        "eval": T.Compose([T.ToTensor(), norm]),
    }


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in _digits(5).items()}


def datasets():
    tf, s = transforms(), _digits(5)
    return {
        "train": kit.ArrayImages(*s["train"], tf["train"]),
        "val": kit.ArrayImages(*s["val"], tf["eval"]),
    }


def _pretrained_backbone() -> nn.Module:
    """The 'model zoo' backbone: trained once on digits 0-4, cached."""
    tf = transforms()["train"]
    x, y = _digits(0)["train"]
    return kit.cached_model(
        kit.file_key(__file__, "backbone") + kit.file_key(_synth.__file__),
        lambda: kit.SmallCNN(in_channels=3, num_classes=5),
        lambda m: kit.fit(m, kit.ArrayImages(x, y, tf), epochs=8, lr=2e-3),
    )


def fresh_model():
    """What fine-tuning starts from: the pretrained backbone with a new head."""
    net = _pretrained_backbone()
    torch.manual_seed(TRAIN["seed"])
    net.head = nn.Linear(net.head.in_features, len(CLASSES))
    return net


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )
