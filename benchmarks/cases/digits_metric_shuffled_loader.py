"""The reported metric is far below the real one: the evaluation script builds its DataLoader with
shuffle=True (copied from the training script) and compares the predictions, in loader order,
with `dataset.labels` in file order. It prints about chance; the model itself is fine."""

import numpy as np
import torch
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "metric_bug"
SYMPTOM = "train_high_val_low"
FAMILY = "digits"
BUG = "eval loader shuffles, predictions compared with labels in file order"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), norm]),
            "eval": T.Compose([T.ToTensor(), norm])}  # fmt: skip


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in kit.digits_splits(seed=8).items()}


def datasets():
    tf, s = transforms(), kit.digits_splits(seed=8)
    return {"train": kit.ArrayImages(*s["train"], tf["train"]),
            "val": kit.ArrayImages(*s["val"], tf["eval"])}  # fmt: skip


def fresh_model():
    return kit.SmallCNN(width=24)


def model():
    return kit.cached_model(
        kit.file_key(__file__), fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )  # fmt: skip


def reported_metric() -> float:
    """The team's eval script, as written."""
    net, val = model(), datasets()["val"]
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(val, batch_size=64, shuffle=True)  # the bug
    with torch.no_grad():
        preds = torch.cat([net(x).argmax(1) for x, _ in loader]).numpy()
    return float(np.mean(preds == np.asarray(val.labels)))
