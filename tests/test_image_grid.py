"""The one gallery drawer: every input convention lands in the right tile, in the right colour."""

import numpy as np
import torch

from detective.analysis.pngplots import image_grid


def _tile_centre(png, index: int, columns: int, cell: int, tile_w: int, text_h: int):
    pad = 2
    x = pad + (index % columns) * (tile_w + pad) + tile_w // 2
    y = pad + (index // columns) * (cell + text_h + pad) + cell // 2
    return np.asarray(png)[y, x]


def test_each_input_convention_lands_in_its_tile_in_its_colour() -> None:
    red_hwc = np.zeros((5, 5, 3))
    red_hwc[..., 0] = 1.0  # numpy: [H, W, C]
    green_chw = torch.zeros(3, 6, 4)
    green_chw[1] = 1.0  # torch: [C, H, W] (a numpy reading would see 3 rows of 4 pixels)
    grey_hw = np.full((4, 4), 0.5)  # numpy [H, W]
    white_1ch = torch.ones(1, 8, 8)  # one channel → RGB
    nan_img = np.full((4, 4), np.nan)  # NaN shows black, not a crash
    images = [red_hwc, green_chw, grey_hw, white_1ch, nan_img]
    png = image_grid(images, columns=3, cell=20)
    assert png.size == (3 * 22 + 2, 2 * 22 + 2)
    got = [tuple(_tile_centre(png, i, 3, 20, 20, 0)) for i in range(5)]
    assert got == [(255, 0, 0), (0, 255, 0), (128, 128, 128), (255, 255, 255), (0, 0, 0)]


def test_captions_widen_the_tiles_and_sit_under_the_images() -> None:
    images = [np.zeros((4, 4))] * 3
    plain = image_grid(images, columns=3, cell=20)
    captioned = image_grid(images, ["a long caption here", "b", "two\nlines"], columns=3, cell=20)
    assert captioned.size[0] > plain.size[0]  # a caption wider than the cell widens every tile
    assert captioned.size[1] >= plain.size[1] + 2 * 12  # room for two caption lines
    below = np.asarray(captioned)[24:, :]
    assert (below < 128).any()  # dark caption text under the images
