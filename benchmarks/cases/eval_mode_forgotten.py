"""Evaluated in training mode: the user's evaluation script never calls model.eval(), so dropout
stays on and batch-norm normalises each small eval batch with its own statistics. The number it
prints (reported_metric below: that script, run as written) is well below what the model does."""

import torch
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "eval_mode_bug"
SYMPTOM = "train_high_val_low"
FAMILY = "digits"
BUG = "the user's eval loop runs the model in train() mode (dropout 0.5, batch-norm, batch 8)"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), norm]),
        "eval": T.Compose([T.ToTensor(), norm]),
    }


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in kit.digits_splits().items()}


def datasets():
    tf, s = transforms(), kit.digits_splits()
    return {
        "train": kit.ArrayImages(*s["train"], tf["train"]),
        "val": kit.ArrayImages(*s["val"], tf["eval"]),
    }


def fresh_model():
    torch.manual_seed(TRAIN["seed"])
    return kit.SmallCNN(dropout=0.5)


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )


def reported_metric() -> float:
    """The user's own eval script, bug included: what they believe their val accuracy is."""
    net = model()
    net.train()  # the bug: should be net.eval()
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(datasets()["val"], batch_size=8)
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((net(x).argmax(1) == y).sum())
            total += len(y)
    return correct / total
