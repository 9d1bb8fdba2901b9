"""Planted bug: one output regressed onto the class index with MSE (classes become numbers)."""

import learning_common as common
import torch
import torch.nn.functional as F  # noqa: N812

from detective.casekit.demo import kit

CLASSES = common.CLASSES
TRAIN = {"epochs": 2, "batch_size": 64, "lr": 2e-3, "seed": 0}


def datasets():
    return common.tensor_splits()


def fresh_model():
    torch.manual_seed(0)
    return kit.SmallCNN(num_classes=1)


def loss():
    return lambda out, y: F.mse_loss(out.squeeze(1), y.float())


def model():
    return common.trained(__file__, fresh_model, epochs=TRAIN["epochs"], loss_fn=loss())
