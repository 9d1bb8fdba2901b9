"""Planted: dropout before the head and a train() override, so .eval() never takes."""

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
    return ec.StuckDropout(ec.clean().model(), p=0.5)
