"""Planted: a quarter of val darkened (indices in DARK); the model errs ~3x more on them."""

import errors_common as ec

CLASSES = ec.clean().CLASSES
NORMALIZATION = ec.clean().NORMALIZATION
TRAIN = ec.clean().TRAIN

x, y, DARK = ec.dark_val(share=0.25, factor=0.6)


def transforms():
    return ec.clean().transforms()


def datasets():
    return ec.splits_with_val(x, y)


def raw_datasets():
    return ec.splits_with_val(x, y, raw=True)


def model():
    return ec.NoisyOnDark(ec.clean().model(), rate=0.1, dark_rate=0.25, threshold=0.232).eval()
