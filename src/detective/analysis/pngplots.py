"""Small PNG figures drawn with Pillow: a labelled heatmap (confusion matrix), a reliability
diagram and the one captioned image grid (tiled by torchvision's make_grid). Pillow is already a
dependency and draws these in milliseconds, where importing matplotlib would cost a second of
the demo's budget."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _font() -> Any:
    from PIL import ImageFont

    return ImageFont.load_default()


def heatmap_png(
    matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str = ""
) -> None:
    """Rows = true class, columns = predicted; cells shaded by row-normalised share."""
    from PIL import Image, ImageDraw

    k = len(labels)
    cell = max(18, min(40, 480 // max(k, 1)))
    margin = 70
    size = (margin + k * cell + 10, margin + k * cell + 30)
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    font = _font()
    d.text((margin, 5), title or "confusion matrix (rows: true, columns: predicted)", "black", font)
    for i in range(k):
        total = max(1, sum(matrix[i]))
        for j in range(k):
            v = matrix[i][j]
            share = v / total
            shade = 255 - int(200 * share)
            color = (shade, shade, 255) if i == j else (255, shade, shade)
            x0, y0 = margin + j * cell, margin + i * cell
            d.rectangle((x0, y0, x0 + cell - 1, y0 + cell - 1), fill=color, outline=(220, 220, 220))
            if v and cell >= 18:
                d.text((x0 + 2, y0 + cell // 3), str(v), "black", font)
    for i, name in enumerate(labels):
        short = str(name)[:8]
        d.text((4, margin + i * cell + cell // 3), short, "black", font)
        d.text((margin + i * cell + 2, margin - 14), short[:4], "black", font)
    d.text((margin, margin + k * cell + 8), "predicted →", "black", font)
    img.save(path)


def reliability_png(bins: Sequence[tuple[float, float, int]], path: Path, title: str = "") -> None:
    """`bins`: (mean confidence, accuracy, count) per equal-mass bin."""
    from PIL import Image, ImageDraw

    w, h, m = 360, 360, 40
    img = Image.new("RGB", (w + 2 * m, h + 2 * m), "white")
    d = ImageDraw.Draw(img)
    font = _font()

    def xy(cx: float, cy: float) -> tuple[float, float]:
        return m + cx * w, m + (1 - cy) * h

    d.rectangle((m, m, m + w, m + h), outline="black")
    d.line((*xy(0, 0), *xy(1, 1)), fill=(150, 150, 150), width=1)
    for t in (0.25, 0.5, 0.75):
        d.text((xy(t, 0)[0] - 8, m + h + 4), f"{t:.2f}", "black", font)
        d.text((4, xy(0, t)[1] - 5), f"{t:.2f}", "black", font)
    points = [xy(c, a) for c, a, n in bins if n]
    for c, a, n in bins:
        if not n:
            continue
        x, y = xy(c, a)
        r = 2 + min(6, math.sqrt(n) / 3)
        d.ellipse((x - r, y - r, x + r, y + r), fill=(200, 60, 60))
    if len(points) > 1:
        d.line(points, fill=(200, 60, 60), width=2)
    d.text((m, 8), title or "reliability: accuracy vs confidence", "black", font)
    d.text((m + w // 2 - 30, m + h + 20), "confidence", "black", font)
    d.text((4, m - 16), "accuracy", "black", font)
    img.save(path)


def image_grid(
    images: Sequence[Any], captions: Sequence[str] | None = None, columns: int = 8, cell: int = 72
) -> Any:
    """The one gallery drawer: a PIL image of `images` tiled `columns` per row by torchvision's
    `make_grid`, each scaled (nearest neighbours, so tiny inputs stay legible) to fit a `cell`
    square, with its caption (may hold newlines) under it.

    An image is a numpy array [H, W] or [H, W, C], or a torch tensor [H, W] or [C, H, W] (the
    `to_pil_image` convention), floats in [0, 1]; NaN shows black, 1 or 4 channels become RGB.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F  # noqa: N812
    from PIL import Image, ImageDraw
    from torchvision.utils import make_grid

    font = _font()
    caps = list(captions or ())
    lines = max((c.count("\n") + 1 for c in caps), default=0)
    text_h = 12 * lines + 4 if lines else 0
    text_w = max((int(font.getbbox(line)[2]) for c in caps for line in c.split("\n")), default=0)
    tile_w = max(cell, text_w + 4)
    tiles = []
    for img in images:
        t = _rgb_chw(img)
        scale = cell / max(t.shape[-2:])
        h, w = (max(1, round(t.shape[-2] * scale)), max(1, round(t.shape[-1] * scale)))
        t = F.interpolate(t[None], size=(h, w), mode="nearest")[0]
        tile = torch.ones(3, cell + text_h, tile_w)
        left = (tile_w - w) // 2
        tile[:, :h, left : left + w] = t
        tiles.append(tile)
    columns = max(1, min(columns, len(tiles)))
    pad = 2
    sheet = make_grid(tiles or [torch.ones(3, cell, cell)], nrow=columns, padding=pad,
                      pad_value=1.0)
    out = Image.fromarray((sheet.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for i, cap in enumerate(caps[: len(tiles)]):
        x0 = pad + (i % columns) * (tile_w + pad)
        y0 = pad + (i // columns) * (cell + text_h + pad) + cell + 2
        draw.multiline_text((x0 + 2, y0), cap, "black", font, spacing=1)
    return out


def _rgb_chw(img: Any) -> Any:
    """A float RGB tensor [3, H, W] in [0, 1] from an array (HW/HWC) or a tensor (HW/CHW)."""
    import numpy as np
    import torch

    if isinstance(img, torch.Tensor):
        t = img.detach().cpu().double()
        t = t[None] if t.ndim == 2 else t
    else:
        a = np.asarray(img, np.float64)
        t = torch.from_numpy(a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0).copy())
    t = torch.nan_to_num(t.float(), nan=0.0).clamp(0, 1)
    return t[:1].expand(3, -1, -1) if t.shape[0] < 3 else t[:3]
