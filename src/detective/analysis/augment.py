"""Knowing which parts of a user's transform are random augmentation.

Used to build the deterministic version of a training transform (what train-time preprocessing
does to an image once augmentation is switched off), and to list augmentations by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# torchvision (v1 and v2) random transforms and what stands in for them when augmentation is off.
_DROP = {
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
    "RandomRotation",
    "RandomAffine",
    "RandomPerspective",
    "ColorJitter",
    "RandomGrayscale",
    "RandomErasing",
    "GaussianBlur",
    "RandomInvert",
    "RandomPosterize",
    "RandomSolarize",
    "RandomAdjustSharpness",
    "RandomAutocontrast",
    "RandomEqualize",
    "AutoAugment",
    "RandAugment",
    "TrivialAugmentWide",
    "AugMix",
    "RandomApply",
    "RandomChoice",
    "RandomOrder",
    "ElasticTransform",
    "RandomPhotometricDistort",
    "RandomChannelPermutation",
    "GaussianNoise",
    "JPEG",
    "RandomZoomOut",
    "RandomIoUCrop",
}


def is_random(t: Any) -> bool:
    name = type(t).__name__
    return name in _DROP or name in ("RandomResizedCrop", "RandomCrop")


def augmentations(transform: Any) -> list[Any]:
    """The random transforms inside a torchvision Compose (recursively), in order."""
    inner = getattr(transform, "transforms", None)
    if isinstance(inner, list | tuple):
        out: list[Any] = []
        for t in inner:
            out.extend(
                augmentations(t)
                if hasattr(t, "transforms") and not is_random(t)
                else ([t] if is_random(t) else [])
            )
        return out
    return [transform] if is_random(transform) else []


def deterministic(transform: Callable[[Any], Any]) -> tuple[Callable[[Any], Any], bool]:
    """The transform with random augmentation removed, and whether that was possible.

    Random crops become their centred equivalent so the output size is unchanged. A transform
    we cannot see inside (a plain function) is returned as is, with False.
    """
    from torchvision import transforms as T  # noqa: N812

    inner = getattr(transform, "transforms", None)
    if not isinstance(inner, list | tuple):
        if not is_random(transform):
            return transform, hasattr(transform, "__module__") and "torchvision" in type(
                transform
            ).__module__
        replaced = _centred(transform)
        return (replaced, True) if replaced is not None else (lambda x: x, True)
    kept: list[Any] = []
    for t in inner:
        if is_random(t):
            replaced = _centred(t)
            if replaced is not None:
                kept.append(replaced)
            continue
        if isinstance(getattr(t, "transforms", None), list | tuple):
            sub, ok = deterministic(t)
            if not ok:
                return transform, False
            kept.append(sub)
        else:
            kept.append(t)
    return T.Compose(kept), True


def _centred(t: Any) -> Any:
    from torchvision import transforms as T  # noqa: N812

    name = type(t).__name__
    if name == "RandomResizedCrop":
        return T.Compose([T.Resize(t.size), T.CenterCrop(t.size)])
    if name == "RandomCrop":
        return T.CenterCrop(t.size)
    return None
