"""Planted bug: labels are 1-based (1..10) while CLASSES lists 10 classes indexed 0..9."""

import learning_common as common
import torch

from detective.casekit.demo import kit

CLASSES = common.CLASSES
TRAIN = {"epochs": 1, "batch_size": 64, "lr": 2e-3, "seed": 0}


def datasets():
    return {k: kit.TensorImages(d.x, d.y + 1) for k, d in common.tensor_splits().items()}


def fresh_model():
    torch.manual_seed(0)
    return kit.SmallCNN()


def model():
    return fresh_model().eval()  # never trained: the labels crash a real loop
