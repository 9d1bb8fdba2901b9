"""Architectures by name and the user's checkpoint loaded into them, with mismatches explained.

No weights are ever downloaded: torchvision models are built with `weights=None`, timm models
with `pretrained=False`; the weights come from the user's checkpoint.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detective.core.case import CaseError

if TYPE_CHECKING:
    import torch

# Wrappers that prefix every key: DDP / DataParallel, torch.compile.
KNOWN_PREFIXES = ("module.", "_orig_mod.")
# Where training scripts nest the weights inside a checkpoint dict, most specific first.
NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "weights")
SHOW = 5


class ArchError(CaseError):
    """An architecture name that cannot be built here."""


class CheckpointError(CaseError):
    """A checkpoint that cannot be read or does not fit the model."""


# --- architectures -------------------------------------------------------------------------------


def _close(name: str, names: list[str]) -> str:
    near = difflib.get_close_matches(name, names, n=4, cutoff=0.6)
    return f"; did you mean {', '.join(near)}?" if near else ""


def torchvision_arch(name: str, num_classes: int) -> torch.nn.Module:
    """A torchvision classification model by name, randomly initialised, `num_classes` outputs."""
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    if name not in names:
        raise ArchError(
            f"unknown torchvision architecture {name!r}{_close(name, names)} "
            "(for a timm model write timm:NAME)"
        )
    try:
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    except Exception as e:  # e.g. a model that cannot take this num_classes
        raise ArchError(f"torchvision could not build {name!r}: {type(e).__name__}: {e}") from e


def timm_arch(name: str, num_classes: int) -> torch.nn.Module:
    """A timm model (`timm:NAME` or `NAME`), `pretrained=False`, `num_classes` outputs."""
    name = name.removeprefix("timm:")
    try:
        import timm
    except ImportError as e:
        raise ArchError(
            f"timm:{name} needs the timm package, which is not installed: "
            "pip install 'detective[timm]' (or pip install timm)"
        ) from e
    if not timm.is_model(name):
        names = timm.list_models()
        raise ArchError(f"unknown timm architecture {name!r}{_close(name, names)}")
    return timm.create_model(name, pretrained=False, num_classes=num_classes)


def build_arch(arch: str, num_classes: int) -> torch.nn.Module:
    """`timm:NAME` → timm, anything else → torchvision."""
    if arch.startswith("timm:"):
        return timm_arch(arch, num_classes)
    return torchvision_arch(arch, num_classes)


# --- checkpoints ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointFit:
    """How a checkpoint was matched to a model: the state dict to load and what was done."""

    state: dict[str, Any]
    notes: tuple[str, ...]


def read_state_dict(path: str | os.PathLike[str]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The tensors of a checkpoint file (.safetensors, or a torch file read with
    weights_only=True), unwrapped from a training dict; notes say what was unwrapped."""
    import torch

    file = Path(path).expanduser()
    if not file.is_file():
        raise CheckpointError(f"checkpoint not found: {file}")
    if file.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as e:
            raise CheckpointError(
                f"{file.name} is a safetensors file: pip install 'detective[safetensors]' "
                "(or pip install safetensors)"
            ) from e
        try:
            return dict(load_file(str(file), device="cpu")), ()
        except Exception as e:
            raise CheckpointError(f"{file}: not a readable safetensors file ({e})") from e
    from detective.analysis.torchutil import safe_load

    if not _looks_like_torch_file(file):
        raise CheckpointError(
            f"{file}: torch.load cannot read it (neither a torch.save archive nor a pickle; "
            "a .safetensors file needs that suffix)"
        )
    try:
        obj = safe_load(file)
    except RuntimeError as e:
        if "refused to load" in str(e):
            raise CheckpointError(str(e)) from e
        raise CheckpointError(f"{file}: torch.load cannot read it ({e})") from e
    except Exception as e:  # not a torch file at all: pickle, zip and EOF errors
        raise CheckpointError(f"{file}: torch.load cannot read it ({type(e).__name__}: {e})") from e
    if isinstance(obj, torch.nn.Module):  # only with DETECTIVE_UNSAFE_LOAD=1
        return dict(obj.state_dict()), ("the file holds a whole pickled model; used its weights",)
    notes: list[str] = []
    while isinstance(obj, dict) and not _is_state_dict(obj):
        inner = next((k for k in NESTED_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            keys = ", ".join(map(str, list(obj)[:8]))
            raise CheckpointError(
                f"{file}: a dict without model weights at its top level or under "
                f"{', '.join(NESTED_KEYS)} (its keys: {keys})"
            )
        notes.append(f"weights read from the checkpoint's {inner!r} entry")
        obj = obj[inner]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{file}: holds a {type(obj).__name__}, not a state_dict")
    return dict(obj), tuple(notes)


def _looks_like_torch_file(file: Path) -> bool:
    """torch.save writes a zip archive (legacy: a pickle, which starts with protocol 2+)."""
    import zipfile

    if zipfile.is_zipfile(file):
        return True
    with file.open("rb") as f:
        return f.read(1) == b"\x80"


def _is_state_dict(obj: dict[Any, Any]) -> bool:
    import torch

    return bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _strip(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k.removeprefix(prefix): v for k, v in state.items()}


def _common_prefix(state: dict[str, Any], model_keys: set[str]) -> str | None:
    """A first dotted component every key has and that, removed, makes the keys match (a
    Lightning module's `model.`, an EMA wrapper's `ema.`)."""
    heads = {k.split(".", 1)[0] for k in state}
    if len(heads) != 1:
        return None
    prefix = heads.pop() + "."
    stripped = {k.removeprefix(prefix) for k in state}
    return prefix if len(stripped & model_keys) > len(set(state) & model_keys) else None


def fit_checkpoint(
    model: torch.nn.Module, state: dict[str, Any], name: str = "the checkpoint"
) -> CheckpointFit:
    """Match a state dict to `model`: strip wrapper prefixes, then refuse with a clear message
    if keys are missing or unexpected or a shape differs (the classifier's: wrong class count)."""
    expected = model.state_dict()
    keys = set(expected)
    notes = []
    for prefix in KNOWN_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = _strip(state, prefix)
            why = "DDP/DataParallel" if prefix == "module." else "torch.compile"
            notes.append(f"removed the {prefix!r} prefix {why} adds to every key")
    if not keys <= set(state):
        wrapper = _common_prefix(state, keys)
        if wrapper:
            state = _strip(state, wrapper)
            notes.append(f"removed the {wrapper!r} prefix every key had")
    missing = sorted(keys - set(state))
    unexpected = sorted(set(state) - keys)
    shapes = [
        (k, tuple(state[k].shape), tuple(expected[k].shape))
        for k in sorted(keys & set(state))
        if tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or shapes):
        return CheckpointFit(state, tuple(notes))
    raise CheckpointError(_mismatch_message(name, model, missing, unexpected, shapes))


def _mismatch_message(
    name: str,
    model: torch.nn.Module,
    missing: list[str],
    unexpected: list[str],
    shapes: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
) -> str:
    arch = type(model).__name__
    parts = [f"{name} does not fit the model ({arch})"]
    head = _classifier_mismatch(shapes)
    if head is not None:
        key, saved, built = head
        parts.append(
            f"wrong number of classes: {key} is {list(saved)} in the checkpoint (trained for "
            f"{saved[0]} classes) but {list(built)} in the model ({built[0]} classes in CLASSES). "
            "Likely cause: the data has a different set of classes than training had (a class "
            "folder missing or extra), or the checkpoint is from another task"
        )
    others = [s for s in shapes if head is None or s[0] != head[0]]
    if others:
        parts.append(
            "shapes differ: "
            + "; ".join(f"{k} {list(a)} vs {list(b)}" for k, a, b in others[:SHOW])
        )
    if missing:
        parts.append(f"{len(missing)} key(s) missing from the checkpoint: {_first(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s) in the checkpoint: {_first(unexpected)}")
    if missing and unexpected:
        parts.append(
            "Likely cause: the checkpoint is from another architecture (or a wrapper that "
            "renames layers): check the architecture name"
        )
    elif missing and not unexpected:
        parts.append("Likely cause: a partial checkpoint (a backbone without its head?)")
    elif unexpected and not missing:
        parts.append("Likely cause: extra modules saved with the model (EMA, auxiliary heads)")
    return ". ".join(parts) + "."


def _classifier_mismatch(
    shapes: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
) -> tuple[str, tuple[int, ...], tuple[int, ...]] | None:
    """The output layer's weight when only its number of rows (classes) differs."""
    for key, saved, built in shapes:
        if (
            key.endswith("weight")
            and len(saved) == len(built) >= 2
            and saved[0] != built[0]
            and saved[1:] == built[1:]
        ):
            return key, saved, built
    return None


def _first(keys: list[str]) -> str:
    return ", ".join(keys[:SHOW]) + (f" (+{len(keys) - SHOW} more)" if len(keys) > SHOW else "")


def inspect_checkpoint(model: torch.nn.Module, path: str | os.PathLike[str]) -> CheckpointFit:
    """Read and match a checkpoint without loading it (raises CheckpointError on a mismatch)."""
    state, read_notes = read_state_dict(path)
    fit = fit_checkpoint(model, state, Path(path).name)
    return CheckpointFit(fit.state, read_notes + fit.notes)


def load_checkpoint(model: torch.nn.Module, path: str | os.PathLike[str]) -> torch.nn.Module:
    """Load the user's checkpoint (state_dict .pt/.pth, nested or prefixed, or .safetensors)
    into `model` strictly and return it in eval mode."""
    fit = inspect_checkpoint(model, path)
    model.load_state_dict(fit.state, strict=True)
    return model.eval()
