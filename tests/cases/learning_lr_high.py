"""Planted bug: the learning rate is 10x too high (SGD with momentum at 1.0 instead of 0.1)."""

import learning_common as common
import torch

CLASSES = common.CLASSES
TRAIN = {"epochs": 3, "batch_size": 64, "lr": 1.0, "seed": 0}  # the bug: 0.1 trains well


def datasets():
    return common.tensor_splits()


def fresh_model():
    torch.manual_seed(0)
    return common.PlainCNN()


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=TRAIN["lr"], momentum=0.9)


def model():
    return common.trained(__file__, fresh_model, epochs=TRAIN["epochs"], optimizer=optimizer)
