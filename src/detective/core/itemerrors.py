"""Wording for an item that could not be read: which file, and why, in the user's terms.

The user's dataset may open images with Pillow directly. Pillow's errors do not name the file
("image file is truncated (112 bytes not processed)"), and its decompression-bomb guard only
*warns* between 89 and 179 megapixels, printing into the progress display while the whole image
is decoded. `bomb_guard` turns that warning into an error for the item (refused before decoding),
and `describe_item_error` names the file from the Pillow image found in the traceback's frames.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_BOMB = re.compile(r"\((\d+) pixels\) exceeds limit of (\d+) pixels")


@contextmanager
def bomb_guard() -> Iterator[None]:
    """Pillow's DecompressionBombWarning raised as an error inside the block.

    `warnings.catch_warnings` swaps process-wide filters: a warning another thread emits inside
    the block follows the same filters, which for this one category is what we want anyway.
    """
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def image_path_in(exc: BaseException) -> str | None:
    """The file of the innermost Pillow image (or open file) in the traceback's frames."""
    from PIL import Image

    found = None
    tb = exc.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            path = None
            if isinstance(value, Image.Image):
                path = getattr(value, "filename", "") or getattr(
                    getattr(value, "fp", None), "name", None
                )
            elif hasattr(value, "read") and isinstance(getattr(value, "name", None), str):
                path = value.name  # a file object the loader opened
            if isinstance(path, str | os.PathLike) and str(path):
                found = str(path)
        tb = tb.tb_next
    return found


def describe_item_error(exc: BaseException) -> str:
    """'<file>: <cause>' for an exception raised while reading one item."""
    from PIL import Image

    text = str(exc)
    path = image_path_in(exc)
    bomb = _BOMB.search(text)
    if isinstance(exc, Image.DecompressionBombWarning | Image.DecompressionBombError) and bomb:
        pixels, limit = int(bomb.group(1)), int(bomb.group(2))
        cause = (
            f"image of {pixels / 1e6:.0f} MP (limit {limit / 1e6:.0f} MP, Pillow's "
            "decompression-bomb guard): refused before decoding, to bound memory"
        )
    elif path and "truncated" in text.lower():  # Pillow's own wording names no file
        cause = f"truncated image data ({type(exc).__name__}: {text})"
    else:
        cause = f"{type(exc).__name__}: {text}"
    if path and path not in text:
        return f"{path}: {cause}"
    return cause
