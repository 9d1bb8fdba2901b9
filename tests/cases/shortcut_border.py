"""Planted shortcut: in train every digit's border has its class's colour; in val the colour is
random. Train accuracy is high, val accuracy low, and the splits look the same in aggregate."""

import shortcut_common as sc

CLASSES = sc.CLASSES


def datasets():
    return sc.datasets(1.0, 0.0)


def model():
    return sc.trained("border", 1.0, 0.0)
