"""ImageNet-C-style perturbations of a batch in pixel space, five severities each, plus FGSM.

A perturbation works on pixel-unit tensors [B, C, H, W] (de-normalized with the case's declared
NORMALIZATION) and clamps to the pixels' valid range. Severities are chosen so that severity 1 is
mild and 5 is harsh on small images as well as on 224-pixel ones (blur scales with the image), and
each perturbation that moves a measured image property (detective.analysis.imageprops) names it,
so a severity can be mapped to a property value the data itself may contain.

Torch is imported inside functions only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class Tail(StrEnum):
    """Which end of a property's distribution a perturbation pushes images towards."""

    LOW = "low"
    HIGH = "high"
    NONE = ""  # no measured property follows this perturbation


@dataclass(frozen=True)
class Perturbation:
    name: str
    unit: str  # what the severity parameter means
    levels: tuple[float, ...]  # parameter at severities 1..5
    # The image property (detective.analysis.imageprops.PROPERTIES) it moves, "" when none.
    prop: str = ""
    tail: Tail = Tail.NONE


PERTURBATIONS: tuple[Perturbation, ...] = (
    Perturbation("darken", "brightness shift (pixel units)", (0.1, 0.2, 0.3, 0.4, 0.5),
                 "brightness", Tail.LOW),
    Perturbation("brighten", "brightness shift (pixel units)", (0.1, 0.2, 0.3, 0.4, 0.5),
                 "brightness", Tail.HIGH),
    Perturbation("contrast", "contrast factor", (0.8, 0.6, 0.4, 0.25, 0.1), "contrast", Tail.LOW),
    # sigma in pixels for a 64-pixel short side, scaled with the image (ImageNet-C: 1..6 at 224)
    Perturbation("blur", "Gaussian sigma (px at 64 px)", (0.5, 0.75, 1.0, 1.5, 2.0),
                 "sharpness", Tail.LOW),
    Perturbation("noise", "Gaussian noise std (pixel units)", (0.04, 0.08, 0.12, 0.18, 0.26)),
    Perturbation("rotation", "degrees", (5.0, 10.0, 15.0, 20.0, 30.0)),
)


def apply(
    p: Perturbation,
    level: float,
    px: torch.Tensor,
    lo: float,
    hi: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """`px` perturbed at `level`, clamped to [lo, hi]; `generator` (CPU) draws the noise."""
    import torch
    import torchvision.transforms.functional as TF  # noqa: N812

    span = hi - lo
    if p.name == "darken":
        out = px - level * span
    elif p.name == "brighten":
        out = px + level * span
    elif p.name == "contrast":
        mean = px.mean(dim=(1, 2, 3), keepdim=True)
        out = (px - mean) * level + mean
    elif p.name == "blur":
        sigma = level * max(1.0, min(px.shape[-2:]) / 64)
        k = min(2 * math.ceil(3 * sigma) + 1, _odd_at_most(min(px.shape[-2:])))
        out = TF.gaussian_blur(px, [k, k], [sigma, sigma]) if k >= 3 else px
    elif p.name == "noise":
        noise = torch.randn(px.shape, generator=generator).to(px.device, px.dtype)
        out = px + noise * (level * span)
    elif p.name == "rotation":
        out = TF.rotate(px, level, interpolation=TF.InterpolationMode.BILINEAR, fill=lo)
    else:
        raise ValueError(f"unknown perturbation {p.name!r}")
    return out.clamp(lo, hi)


def _odd_at_most(n: int) -> int:
    return n if n % 2 else n - 1


def fgsm_sign(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sign(∂ cross-entropy / ∂ x) for the model's inputs x (the same sign in pixel units, the
    Normalize scale being positive). `model` must be a private copy: only x gets a gradient."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    xg = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(xg), y)
        (grad,) = torch.autograd.grad(loss, xg)
    return grad.sign()
