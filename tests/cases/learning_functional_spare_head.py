"""Clean: a functional-ReLU CNN whose dropout head has spare width (half its units dead)."""

import learning_common as common
import learning_functional as lf

CLASSES = common.CLASSES
TRAIN = {"epochs": 3, "batch_size": 64, "lr": 2e-3, "seed": 0}
fresh_model = lf.build(dead_conv=False, dead_head=0.5)


def datasets():
    return common.tensor_splits()


def model():
    return lf.trained(__file__, fresh_model)
