"""Digits framed by a coloured border, for the shortcut tests.

`train_p` / `val_p`: the share of each split whose border colour is its class's own colour (the
rest get a random palette colour). train_p=1, val_p=0 plants a training-set shortcut; equal
values make the border genuinely informative in both splits. Either way the marginal colour
distribution is the same in train and val: only the pairing of colour and class differs.
"""

from __future__ import annotations

import numpy as np
import torch

from detective.casekit.demo import kit

PALETTE = np.array([
    [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
], dtype=np.float32) / 255.0
SIZE, BORDER = 12, 3  # digit side, border width: 18 × 18 RGB tensors
CLASSES = [str(d) for d in range(10)]


def framed(images: np.ndarray, labels: np.ndarray, p: float, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    n = len(labels)
    colour = np.where(rng.random(n) < p, labels, rng.integers(0, 10, n))
    side = SIZE + 2 * BORDER
    out = np.empty((n, 3, side, side), np.float32)
    out[:] = PALETTE[colour][:, :, None, None]
    out[:, :, BORDER:-BORDER, BORDER:-BORDER] = images[:, None].astype(np.float32) / 255.0
    out += rng.normal(0, 0.03, out.shape).astype(np.float32)
    return torch.from_numpy(out)


def splits(train_p: float, val_p: float) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    s = kit.digits_splits(size=SIZE)
    (xt, yt), (xv, yv) = s["train"], s["val"]
    return {"train": (framed(xt, yt, train_p, 0), torch.as_tensor(yt)),
            "val": (framed(xv, yv, val_p, 1), torch.as_tensor(yv))}


def datasets(train_p: float, val_p: float) -> dict:
    return {k: kit.TensorImages(x, y) for k, (x, y) in splits(train_p, val_p).items()}


def trained(key: str, train_p: float, val_p: float, epochs: int = 6) -> torch.nn.Module:
    def build() -> torch.nn.Module:
        return kit.SmallCNN(in_channels=3, width=12)

    return kit.cached_model(
        f"shortcut-tests-{key}-{train_p}-{val_p}-{epochs}-{SIZE}-{BORDER}", build,
        lambda m: kit.fit(m, datasets(train_p, val_p)["train"], epochs=epochs, lr=3e-3),
    )
