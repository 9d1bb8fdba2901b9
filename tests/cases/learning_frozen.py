"""Planted bug: the backbone is frozen (requires_grad=False, copied from a fine-tuning script)
although it is randomly initialised: only the linear head ever trains."""

import learning_common as common
import torch

from detective.casekit.demo import kit

CLASSES = common.CLASSES
TRAIN = {"epochs": 3, "batch_size": 64, "lr": 2e-3, "seed": 0}


def datasets():
    return common.tensor_splits()


def fresh_model():
    torch.manual_seed(0)
    net = kit.SmallCNN()
    for p in net.features.parameters():
        p.requires_grad = False
    return net


def optimizer(model):
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=TRAIN["lr"])


def model():
    return common.trained(__file__, fresh_model, epochs=TRAIN["epochs"], optimizer=optimizer)
