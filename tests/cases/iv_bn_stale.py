"""Planted: the checkpoint's batch-norm running statistics were never saved (left at their
initial 0/1), so eval mode normalizes with the wrong statistics."""

import interventions_common as ic
import torch

CLASSES = [str(d) for d in range(10)]
TRAIN = {"epochs": 10, "batch_size": 64, "lr": 2e-3, "seed": 0}


def datasets():
    return ic.clean().datasets()


def model():
    net = ic.clean().model()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
    return net.eval()
