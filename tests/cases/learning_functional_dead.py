"""Planted bug: conv2's bias starts at -8 in a CNN that calls F.relu / torch.relu (no modules)."""

import learning_common as common
import learning_functional as lf

CLASSES = common.CLASSES
TRAIN = {"epochs": 3, "batch_size": 64, "lr": 2e-3, "seed": 0}
fresh_model = lf.build(dead_conv=True, dead_head=0.0)


def datasets():
    return common.tensor_splits()


def model():
    return lf.trained(__file__, fresh_model)
