"""Planted: the user's eval loop forgets model.eval(): dropout 0.5 stays on and batch-norm uses
the statistics of each batch of 8. REPORTED is the number that loop prints."""

import errors_common as ec
import torch

CLASSES = ec.clean().CLASSES
NORMALIZATION = ec.clean().NORMALIZATION
TRAIN = ec.clean().TRAIN


def transforms():
    return ec.clean().transforms()


def datasets():
    return ec.clean().datasets()


def raw_datasets():
    return ec.clean().raw_datasets()


def model():
    return ec.DropoutHead(ec.clean().model(), p=0.5).eval()


def reported() -> float:
    """The user's eval loop, bug included."""
    net = model().train()  # the bug: should be .eval()
    torch.manual_seed(0)
    correct = total = 0
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(datasets()["val"], batch_size=8):
            correct += int((net(x).argmax(1) == y).sum())
            total += len(y)
    return correct / total
