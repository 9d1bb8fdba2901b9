"""Clean learning-stage case: a small CNN (batch norm) with AdamW at a sensible LR."""

import learning_common as common
import torch

from detective.casekit.demo import kit

CLASSES = common.CLASSES
TRAIN = {"epochs": 3, "batch_size": 64, "lr": 2e-3, "seed": 0}


def datasets():
    return common.tensor_splits()


def fresh_model():
    torch.manual_seed(0)
    return kit.SmallCNN()


def model():
    return common.trained(__file__, fresh_model, epochs=TRAIN["epochs"], lr=TRAIN["lr"])
