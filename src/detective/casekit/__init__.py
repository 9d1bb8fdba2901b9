"""Bring your own model: the building blocks `detective init` writes case files with.

A generated case file calls these, so it stays short and every argument stays editable:
`image_folder` / `csv_split` (datasets whose class indices come from one CLASSES list),
`build_arch` / `torchvision_arch` / `timm_arch` (architectures by name, never downloading weights),
`load_checkpoint` (a state_dict or safetensors file, unwrapped, prefix-stripped, mismatches
explained), `safe_load` (torch.load with weights_only=True, for hand-written cases). torch is
imported inside the functions that need it.
"""

from typing import Any

from detective.casekit.data import DataError, LabelledImages, csv_split, image_folder
from detective.casekit.models import (
    ArchError,
    CheckpointError,
    build_arch,
    inspect_checkpoint,
    load_checkpoint,
    read_state_dict,
    timm_arch,
    torchvision_arch,
)

__all__ = [
    "ArchError",
    "CheckpointError",
    "DataError",
    "LabelledImages",
    "build_arch",
    "csv_split",
    "image_folder",
    "inspect_checkpoint",
    "load_checkpoint",
    "read_state_dict",
    "safe_load",
    "timm_arch",
    "torchvision_arch",
]


def __getattr__(name: str) -> Any:  # PEP 562: torch loads only when a case asks for safe_load
    if name == "safe_load":
        from detective.analysis.torchutil import safe_load

        return safe_load
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
