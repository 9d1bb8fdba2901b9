"""Shared plumbing of the intervention test cases: the clean digits case and two small variants
(a three-channel digits model, a model fitted on a 40-image train split)."""

from __future__ import annotations

from pathlib import Path

import errors_common as ec
import numpy as np
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

clean = ec.clean


def rgb_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Three channels with different content (digit, its transpose dimmed, its mirror image
    darker), so the channel order matters and a swap is not a per-channel rescaling."""
    out = {}
    for name, (x, y) in kit.digits_splits().items():
        g = (x.transpose(0, 2, 1) * 0.6).round().astype(np.uint8)
        b = (x[:, :, ::-1] * 0.3).round().astype(np.uint8)
        out[name] = (np.stack([x, g, b], axis=-1), y)
    return out


def rgb_transforms() -> dict:
    norm = T.Normalize([0.3, 0.18, 0.09], [0.37, 0.22, 0.11])
    return {"train": T.Compose([T.ToTensor(), norm]), "eval": T.Compose([T.ToTensor(), norm])}


def rgb_model():
    return kit.cached_model(
        kit.file_key(Path(__file__), "rgb"),
        lambda: kit.SmallCNN(in_channels=3),
        lambda m: kit.fit(
            m, kit.ArrayImages(*rgb_splits()["train"], rgb_transforms()["train"]), epochs=8
        ),
    )


def small_train(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    x, y = kit.digits_splits()["train"]
    return x[:n], y[:n]


def small_model():
    """Fitted to memorisation on 40 images: 100 % train, about 78 % val accuracy."""
    tf = clean().transforms()["eval"]
    return kit.cached_model(
        kit.file_key(Path(__file__), "small"),
        kit.SmallCNN,
        lambda m: kit.fit(m, kit.ArrayImages(*small_train(), tf), epochs=80, batch_size=20),
    )
