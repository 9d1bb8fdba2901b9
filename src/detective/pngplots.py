"""Small PNG figures drawn with Pillow: a labelled heatmap (confusion matrix), a reliability
diagram and a captioned image grid. Pillow is already a dependency and draws these in
milliseconds, where importing matplotlib would cost a second of the demo's budget."""

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


def captioned_grid(
    images: Sequence[Any], captions: Sequence[str], path: Path, columns: int = 8, cell: int = 72
) -> None:
    """`images`: [H, W] or [H, W, C] floats in [0, 1]; each gets a caption line under it."""
    import numpy as np
    from PIL import Image, ImageDraw

    font = _font()
    n = max(1, len(images))
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    text_h = 12 * max((c.count("\n") + 1 for c in captions), default=1)
    pitch_w, pitch_h = cell + 48, cell + text_h + 6
    grid = Image.new("RGB", (columns * pitch_w + 4, rows * pitch_h + 4), "white")
    d = ImageDraw.Draw(grid)
    for i, (a, cap) in enumerate(zip(images, captions, strict=False)):
        arr = np.clip(np.nan_to_num(np.asarray(a, np.float64)), 0, 1)
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        pil = Image.fromarray((arr * 255).round().astype(np.uint8)).convert("RGB")
        scale = cell / max(pil.size)
        pil = pil.resize(
            (max(1, round(pil.size[0] * scale)), max(1, round(pil.size[1] * scale))),
            Image.NEAREST,
        )
        x0, y0 = 2 + (i % columns) * pitch_w, 2 + (i // columns) * pitch_h
        grid.paste(pil, (x0 + (pitch_w - pil.size[0]) // 2, y0))
        d.multiline_text((x0 + 2, y0 + cell + 2), cap, "black", font, spacing=1)
    grid.save(path)
