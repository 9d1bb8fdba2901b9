"""Small torch helpers shared by checks; import this module only inside functions."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch


class DeviceError(Exception):
    pass


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"--device {name} was asked for, but no CUDA device is available here")
    try:
        return torch.device(name)
    except RuntimeError as e:
        raise DeviceError(f"unknown device {name!r} (use auto, cpu or cuda)") from e


def describe_device(device: torch.device) -> str:
    """'cpu', or 'cuda:0 (NVIDIA A100)': what a user needs to know ran their checks."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def safe_load(path: str | Path, map_location: Any = "cpu") -> Any:
    """torch.load with weights_only=True: a checkpoint cannot run code.

    A checkpoint that needs arbitrary pickles is refused; the error names the opt-out
    (DETECTIVE_UNSAFE_LOAD=1, only for files you trust).
    """
    unsafe = os.environ.get("DETECTIVE_UNSAFE_LOAD") == "1"
    try:
        return torch.load(path, map_location=map_location, weights_only=not unsafe)
    except Exception as e:
        if unsafe or "weights_only" not in str(e) and "Unsupported global" not in str(e):
            raise
        raise RuntimeError(
            f"{path}: refused to load a checkpoint that contains arbitrary Python objects "
            "(torch.load weights_only=True). Save a state_dict instead, or, only for a file you "
            "trust, set DETECTIVE_UNSAFE_LOAD=1."
        ) from e


def model_hash(model: torch.nn.Module) -> str:
    """A content hash of the weights: cheap enough to key caches on."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        t = tensor.detach().to("cpu").contiguous()
        h.update(str(t.dtype).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def model_device(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def reset_parameters(model: torch.nn.Module) -> torch.nn.Module:
    """Re-initialise every submodule that knows how (the usual 'fresh model' of an architecture)."""
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    return model


# Below this many (parameters x input elements) a CPU step is too small to split across threads:
# synchronisation dominates (measured 6-12x slower with 2 threads on a busy 2-core machine).
SMALL_STEP = 5e8


@contextmanager
def few_cpu_threads(model: torch.nn.Module, x: torch.Tensor) -> Iterator[None]:
    """One torch CPU thread for tiny steps (restored afterwards); no change otherwise."""
    params = sum(p.numel() for p in model.parameters())
    small = x.device.type == "cpu" and params * x[0].numel() < SMALL_STEP
    before = torch.get_num_threads()
    if small and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def last_linear(model: torch.nn.Module) -> torch.nn.Linear | None:
    """The model's last `nn.Linear` in registration order (its classification head, for the
    architectures we meet), or None when it has none."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    return linears[-1] if linears else None


def inference_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced precision an inference pass runs in: bf16 on a CUDA GPU that has it, else
    fp16 on CUDA (forward only: no gradient to underflow, so no scaler); None (fp32) on the
    CPU, where autocast is slower than fp32 for most convolutions."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextmanager
def inference_autocast(device: torch.device, dtype: torch.dtype | None = None) -> Iterator[None]:
    """Autocast a forward pass at `dtype` (default: `inference_dtype(device)`); outputs are
    cast back to fp32 by the caller. A no-op when the dtype is None."""
    dtype = dtype if dtype is not None else inference_dtype(device)
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


def argmax_finite(logits: torch.Tensor) -> torch.Tensor:
    """The predicted class per row; -1 (never right) for a row with NaN/Inf logits. A diverged
    checkpoint predicts nothing: argmax would pick a NaN's index and be "right" on that class's
    items."""
    pred = logits.argmax(1)
    return torch.where(torch.isfinite(logits).all(1), pred, torch.full_like(pred, -1))
