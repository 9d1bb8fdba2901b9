"""Planted bug: the LR is far too high, training diverged and the saved checkpoint holds NaN."""

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
    net = fresh_model()
    with torch.no_grad():  # the checkpoint written after the loss went NaN
        for p in net.parameters():
            p.fill_(float("nan"))
    return net
