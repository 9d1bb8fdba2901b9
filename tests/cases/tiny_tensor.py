"""The smallest valid case: required hooks only, tensors already, an untrained model.

Every check must cope with it: run, or say `not_applicable` for the hooks it lacks.
"""

import torch

from detective.casekit.demo import kit

CLASSES = ["neg", "pos"]
TRAIN = {"epochs": 1, "batch_size": 16}


def datasets():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 8, 8, generator=g)
    y = (x.mean((1, 2, 3)) > 0).long()
    return {"train": kit.TensorImages(x[:48], y[:48]), "val": kit.TensorImages(x[48:], y[48:])}


def model():
    torch.manual_seed(0)
    return kit.SmallCNN(num_classes=2, width=4)
