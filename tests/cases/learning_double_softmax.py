"""Planted bug: the model ends in a softmax; the loss is cross-entropy (which applies its own)."""

import learning_common as common
import torch
from torch import nn

from detective.casekit.demo import kit

CLASSES = common.CLASSES
TRAIN = {"epochs": 3, "batch_size": 64, "lr": 2e-3, "seed": 0}


def datasets():
    return common.tensor_splits()


def fresh_model():
    torch.manual_seed(0)
    return nn.Sequential(kit.SmallCNN(), nn.Softmax(dim=1))


def loss():
    return nn.CrossEntropyLoss()


def model():
    return common.trained(__file__, fresh_model, epochs=TRAIN["epochs"], lr=TRAIN["lr"])
