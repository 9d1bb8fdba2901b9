"""Planted: 10 % of the val labels flipped to another class (indices in FLIPPED)."""

import errors_common as ec

CLASSES = ec.clean().CLASSES
NORMALIZATION = ec.clean().NORMALIZATION
TRAIN = ec.clean().TRAIN

x, y, FLIPPED = ec.flipped_val(0.10)


def transforms():
    return ec.clean().transforms()


def datasets():
    return ec.splits_with_val(x, y)


def raw_datasets():
    return ec.splits_with_val(x, y, raw=True)


def model():
    return ec.clean().model()
