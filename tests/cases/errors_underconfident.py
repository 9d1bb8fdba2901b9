"""Planted: the clean model with its logits divided by 4 (badly underconfident)."""

import errors_common as ec

CLASSES = ec.clean().CLASSES
NORMALIZATION = ec.clean().NORMALIZATION
TRAIN = ec.clean().TRAIN


def transforms():
    return ec.clean().transforms()


def datasets():
    return ec.clean().datasets()


def raw_datasets():
    return ec.clean().raw_datasets()


def model():
    return ec.Scaled(ec.clean().model(), scale=0.25).eval()
