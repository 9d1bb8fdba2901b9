"""Planted bug: the second conv's bias starts at -8, so its ReLU units never fire (no BN)."""

import learning_common as common
import torch

CLASSES = common.CLASSES
TRAIN = {"epochs": 3, "batch_size": 64, "lr": 2e-3, "seed": 0}


def datasets():
    return common.tensor_splits()


def fresh_model():
    torch.manual_seed(0)
    net = common.PlainCNN()
    with torch.no_grad():
        net.conv2.bias.fill_(-8.0)  # the bug (e.g. an init helper applied to the wrong layer)
    return net


def model():
    return common.trained(__file__, fresh_model, epochs=TRAIN["epochs"], lr=TRAIN["lr"])
