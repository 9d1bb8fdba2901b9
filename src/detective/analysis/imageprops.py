"""Cheap per-image properties, batched: brightness, contrast, sharpness, saturation, size.

Computed on the tensors the model receives (de-normalized with the case's declared
NORMALIZATION when there is one, so values are in [0, 1] pixel units) and, when raw images
exist, their original size and aspect. Used by data-health shift tests, slices and clusters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

    from detective.core.case import Normalization

PROPERTIES = ("brightness", "contrast", "sharpness", "saturation")
SIZE_PROPERTIES = ("width", "height", "aspect")


@dataclass(frozen=True)
class PropertyBatch:
    """One array per property, aligned with the batch rows."""

    brightness: np.ndarray
    contrast: np.ndarray
    sharpness: np.ndarray
    saturation: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        return {p: getattr(self, p) for p in PROPERTIES}


def denormalize(x: torch.Tensor, normalization: Normalization | None) -> torch.Tensor:
    """Undo the declared Normalize: back to pixel units (about [0, 1])."""
    if normalization is None or len(normalization.mean) != x.shape[1]:
        return x
    mean = x.new_tensor(normalization.mean).view(1, -1, 1, 1)
    std = x.new_tensor(normalization.std).view(1, -1, 1, 1)
    return x * std + mean


def tensor_properties(x: torch.Tensor, normalization: Normalization | None = None) -> PropertyBatch:
    """Properties of a batch [B, C, H, W] on whatever device it is on; returns CPU numpy arrays."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    with torch.no_grad():
        px = denormalize(x.float(), normalization)
        if px.shape[1] == 3:
            # One kernel each (einsum, aminmax): strided per-channel arithmetic cost ~2x more,
            # a quarter of a small CNN's forward in the collection pass (benchmarks/collect.py).
            lum = torch.einsum("bchw,c->bhw", px, px.new_tensor([0.299, 0.587, 0.114]))
            mn, mx = px.aminmax(dim=1)
            saturation = ((mx - mn) / mx.clamp_min(1e-6)).mean((1, 2))
        else:
            lum = px.mean(1)
            saturation = torch.zeros(px.shape[0], device=px.device)
        brightness = lum.mean((1, 2))
        contrast = lum.flatten(1).std(1)
        laplacian = [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]
        kernel = lum.new_tensor(laplacian).view(1, 1, 3, 3)
        lap = F.conv2d(lum.unsqueeze(1), kernel)
        sharpness = lap.flatten(1).var(1) if lap.shape[-1] > 0 else torch.zeros_like(brightness)
    return PropertyBatch(
        brightness.cpu().numpy(),
        contrast.cpu().numpy(),
        sharpness.cpu().numpy(),
        saturation.cpu().numpy(),
    )


def raw_size(image: object) -> tuple[int, int]:
    """(width, height) of a PIL image, or of an array/tensor image; (0, 0) when unknown."""
    size = getattr(image, "size", None)
    if isinstance(size, tuple) and len(size) == 2:
        return int(size[0]), int(size[1])
    shape = getattr(image, "shape", None)
    if shape is not None and len(shape) >= 2:
        return int(shape[-1]), int(shape[-2])
    return 0, 0


def blank_inputs(x: torch.Tensor) -> np.ndarray:
    """Items whose every channel is one constant value: a decoder's fallback (a black or grey
    image), also after a per-channel Normalize (which makes the channels differ)."""
    flat = x.flatten(2).double() if x.dim() >= 3 else x.double().unsqueeze(1)
    spread = (flat.amax(2) - flat.amin(2)).amax(1)
    scale = flat.abs().amax((1, 2)).clamp_min(1.0)
    return (spread <= 1e-6 * scale).cpu().numpy()
