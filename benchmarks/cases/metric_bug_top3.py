"""The reported metric is wrong: the team's metric helper computes top-3 accuracy (a `topk(3)`
copied from an ImageNet script) and the dashboard labels it 'accuracy'. The scans are noisy and
the model's real top-1 accuracy is far lower than the number everybody quotes."""

import _synth
import torch
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "metric_bug"
SYMPTOM = "good_offline_bad_in_production"
FAMILY = "digits"
BUG = "reported 'accuracy' is top-3 accuracy"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.33], "std": [0.33]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def _splits():
    return {
        k: (_synth.noisy(x, 90.0, seed=i), y)
        for i, (k, (x, y)) in enumerate(kit.digits_splits().items())
    }


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
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )


def reported_metric() -> float:
    """The team's metric helper, bug included (top-3 hits counted as correct)."""
    net = model()
    loader = torch.utils.data.DataLoader(datasets()["val"], batch_size=256)
    hits = total = 0
    with torch.no_grad():
        for x, y in loader:
            hits += int((net(x).topk(3, dim=1).indices == y[:, None]).any(1).sum())
            total += len(y)
    return hits / total
