"""Planted: val keeps only 8 examples of classes 7, 8, 9, and the model under-predicts them
(a -6 bias on their logits, as after training on an imbalanced set)."""

import errors_common as ec

CLASSES = ec.clean().CLASSES
NORMALIZATION = ec.clean().NORMALIZATION
TRAIN = ec.clean().TRAIN

_x, _y = ec.kit.digits_splits()["val"]
x, y = ec.subset(_x, _y, {7: 8, 8: 8, 9: 8})


def transforms():
    return ec.clean().transforms()


def datasets():
    return ec.splits_with_val(x, y)


def raw_datasets():
    return ec.splits_with_val(x, y, raw=True)


def model():
    return ec.Scaled(ec.clean().model(), shift={7: -6.0, 8: -6.0, 9: -6.0}).eval()
