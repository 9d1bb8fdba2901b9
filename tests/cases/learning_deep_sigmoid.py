"""Planted bug: a deep stack of sigmoid layers (default init): gradients vanish on the way down."""

import learning_common as common
import torch

CLASSES = common.CLASSES
TRAIN = {"epochs": 3, "batch_size": 64, "lr": 2e-3, "seed": 0}


def datasets():
    return common.tensor_splits()


def fresh_model():
    torch.manual_seed(0)
    return common.DeepSigmoidMLP()


def model():
    return common.trained(__file__, fresh_model, epochs=TRAIN["epochs"], lr=TRAIN["lr"])
