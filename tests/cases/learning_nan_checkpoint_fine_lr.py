"""Clean recipe, broken file: the LR is fine, but the checkpoint on disk holds NaN (a write
that went wrong, not a diverged run). The LR must not be blamed."""

import learning_nan_checkpoint as diverged
import torch

CLASSES = diverged.CLASSES
TRAIN = {**diverged.TRAIN, "lr": 0.1}  # what trains well on this data
datasets, fresh_model, model = diverged.datasets, diverged.fresh_model, diverged.model


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=TRAIN["lr"], momentum=0.9)
