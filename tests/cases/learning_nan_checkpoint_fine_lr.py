"""Clean recipe, broken file: the LR is fine, but the checkpoint on disk holds NaN (a write
that went wrong, not a diverged run). The LR must not be blamed."""

import learning_common as common
import torch

CLASSES = common.CLASSES
TRAIN = {"epochs": 3, "batch_size": 64, "lr": 0.1, "seed": 0}


def datasets():
    return common.tensor_splits()


def fresh_model():
    torch.manual_seed(0)
    return common.PlainCNN()


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=TRAIN["lr"], momentum=0.9)


def model():
    net = fresh_model()
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(float("nan"))
    return net
