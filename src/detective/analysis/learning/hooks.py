"""Activation statistics of every activation *call* in a forward pass, reduced on the fly (memory
stays flat).

Activations are caught as functions, not modules: a `TorchFunctionMode` sees `F.relu`,
`torch.relu`, `x.relu()`, `torch.sigmoid`, … whether or not the model uses `nn.ReLU` modules
(`nn.ReLU` itself calls `F.relu`). Forward pre/post hooks on the model's modules name each call
site after the module whose forward made it (`body.3`, or `conv_block.relu#2` for the second
functional ReLU inside `conv_block.forward`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

RANK_MAX_UNITS = 1024  # covariance per call site is units²; wider layers report no rank
RANK_ROWS_PER_CALL = 2048  # unit vectors (item × position) sampled per call for the covariance


@dataclass(frozen=True)
class LayerSummary:
    name: str
    kind: str
    units: int
    dead_fraction: float
    zero_fraction: float
    saturated_fraction: float
    std: float
    rank: float = math.nan  # dimensions holding 99 % of the output variance (ReLU family)
    input_rank: float = math.nan  # the same for the pre-activation it was given


def _kind(module: Any) -> str | None:
    """The activation kind of a module (for naming a call made inside it)."""
    from torch import nn

    if isinstance(module, nn.ReLU | nn.ReLU6):
        return "relu"
    if isinstance(module, nn.Sigmoid):
        return "sigmoid"
    if isinstance(module, nn.Tanh | nn.Hardtanh):
        return "tanh"
    if isinstance(module, nn.GELU | nn.SiLU | nn.ELU | nn.LeakyReLU | nn.Mish | nn.Softplus):
        return "other"
    return None


_FUNCTION_KINDS = {
    "relu": "relu",
    "relu_": "relu",
    "relu6": "relu",
    "sigmoid": "sigmoid",
    "sigmoid_": "sigmoid",
    "tanh": "tanh",
    "tanh_": "tanh",
    "hardtanh": "tanh",  # relu when its lower bound is 0 (nn.ReLU6): see _function_kind
    "hardtanh_": "tanh",
    "gelu": "other",
    "silu": "other",
    "elu": "other",
    "leaky_relu": "other",
    "mish": "other",
    "softplus": "other",
}


def _function_kind(func: Any, args: tuple, kwargs: dict) -> str | None:
    name = getattr(func, "__name__", "")
    kind = _FUNCTION_KINDS.get(name)
    if kind == "tanh" and name.startswith("hardtanh"):
        low = kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)
        return "relu" if isinstance(low, int | float) and low >= 0 else "tanh"
    return kind


class _Acc:
    """Running per-unit 'ever active', zero/saturated counts, moments and (ReLU family) the
    unit covariance of one call site."""

    def __init__(self, kind: str, ranks: bool = True) -> None:
        self.kind = kind
        self.ranks = ranks
        self.ever: torch.Tensor | None = None
        self.n = 0
        self.zeros = 0.0
        self.sat = 0.0
        self.s1 = 0.0
        self.s2 = 0.0
        self.out_cov = _Cov()
        self.in_cov = _Cov()

    def add(self, out: torch.Tensor, inp: Any = None) -> None:
        out = out.detach().float()
        units_dim = 1 if out.ndim >= 2 else 0
        reduce = [d for d in range(out.ndim) if d != units_dim]
        active = (out > 0).any(dim=reduce) if reduce else out > 0
        self.ever = active if self.ever is None else self.ever | active
        self.n += out.numel()
        if self.kind == "relu":
            self.zeros += float((out <= 0).sum())
            if self.ranks:
                self.out_cov.add(out)
            if self.ranks and inp is not None and getattr(inp, "shape", None) == out.shape:
                self.in_cov.add(inp.detach().float())
        elif self.kind == "sigmoid":
            self.sat += float(((out < 0.01) | (out > 0.99)).sum())
        elif self.kind == "tanh":
            self.sat += float((out.abs() > 0.99).sum())
        self.s1 += float(out.double().sum())
        self.s2 += float(out.double().pow(2).sum())


class _Cov:
    """Running unit covariance of [B, units, …] tensors (unit vectors per item and position)."""

    def __init__(self) -> None:
        self.rows = 0
        self.v1: torch.Tensor | None = None
        self.v2: torch.Tensor | None = None

    def add(self, t: torch.Tensor) -> None:
        units = t.shape[1] if t.ndim >= 2 else 0
        if not 0 < units <= RANK_MAX_UNITS:
            return
        vecs = t.movedim(1, -1).reshape(-1, units).double()
        if len(vecs) > RANK_ROWS_PER_CALL:  # a fixed stride: deterministic
            vecs = vecs[:: math.ceil(len(vecs) / RANK_ROWS_PER_CALL)]
        s1, s2 = vecs.sum(0), vecs.T @ vecs
        self.v1 = s1 if self.v1 is None else self.v1 + s1
        self.v2 = s2 if self.v2 is None else self.v2 + s2
        self.rows += len(vecs)

    def rank(self) -> float:
        """How many directions hold 99 % of the variance (0 when nothing varies)."""
        import torch

        if self.v1 is None or self.v2 is None or self.rows < 2:
            return math.nan
        mean = self.v1 / self.rows
        cov = self.v2 / self.rows - torch.outer(mean, mean)
        eig = torch.linalg.eigvalsh(cov).clamp_min(0).flip(0)
        total = float(eig.sum())
        if total <= 1e-12:
            return 0.0
        return float(int((eig.cumsum(0) / total < 0.99).sum()) + 1)


class ActivationStats:
    """Context manager: records every activation call of `model`'s forward passes made inside
    it (functional or module), removes its hooks and mode on exit.

    A call site reached with different unit counts keeps one summary per count.
    """

    def __init__(self, model: torch.nn.Module, ranks: bool = True) -> None:
        self.model = model
        self.ranks = ranks  # False: skip the covariances (dead units and moments only)
        self._acc: dict[tuple[str, tuple[int, ...]], _Acc] = {}
        self._handles: list[Any] = []
        self._stack: list[list[Any]] = []  # [name, activation kind of the module, calls so far]
        self._mode: Any = None

    def __enter__(self) -> ActivationStats:
        from torch.overrides import TorchFunctionMode

        stats = self

        class _Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                kind = _function_kind(func, args, kwargs)
                if kind is not None:
                    stats._record(kind, func, out, args[0] if args else None)
                return out

        for name, module in self.model.named_modules():
            self._handles.append(module.register_forward_pre_hook(self._enter_module(name)))
            self._handles.append(module.register_forward_hook(self._leave_module()))
        self._mode = _Mode()
        self._mode.__enter__()
        return self

    def _enter_module(self, name: str):  # noqa: ANN202
        def hook(module: Any, _inputs: Any) -> None:
            self._stack.append([name, _kind(module), 0])

        return hook

    def _leave_module(self):  # noqa: ANN202
        def hook(_module: Any, _inputs: Any, _output: Any) -> None:
            if self._stack:
                self._stack.pop()

        return hook

    def _record(self, kind: str, func: Any, out: Any, inp: Any) -> None:
        import torch

        if not isinstance(out, torch.Tensor) or not self._stack:
            return  # a call outside the model's forward
        frame = self._stack[-1]
        if frame[1] is not None:  # inside an activation module: the module names the site
            site = frame[0] or "model"
        else:
            frame[2] += 1
            fname = getattr(func, "__name__", kind).rstrip("_")
            site = f"{frame[0] or 'model'}.{fname}#{frame[2]}"
        key = (site, tuple(out.shape[1:2]))
        # An in-place activation (inplace=True) has overwritten its input: no pre-activation.
        self._acc.setdefault(key, _Acc(kind, self.ranks)).add(out, None if inp is out else inp)

    def __exit__(self, *exc: object) -> None:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self._mode = None
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._stack.clear()

    def summary(self) -> list[LayerSummary]:
        out = []
        shapes_per_name: dict[str, int] = {}
        for name, _ in self._acc:
            shapes_per_name[name] = shapes_per_name.get(name, 0) + 1
        for (name, shape), a in self._acc.items():
            ever = a.ever
            units = int(ever.numel()) if ever is not None else 0
            dead = (
                1.0 - float(ever.float().mean())
                if ever is not None and units and a.kind == "relu"
                else 0.0
            )
            mean = a.s1 / a.n if a.n else 0.0
            var = max(a.s2 / a.n - mean * mean, 0.0) if a.n else 0.0
            label = name if shapes_per_name[name] == 1 else f"{name}{list(shape)}"
            out.append(
                LayerSummary(
                    label,
                    a.kind,
                    units,
                    dead,
                    a.zeros / a.n if a.n and a.kind == "relu" else 0.0,
                    a.sat / a.n if a.n else 0.0,
                    var**0.5,
                    a.out_cov.rank() if a.kind == "relu" else math.nan,
                    a.in_cov.rank() if a.kind == "relu" else math.nan,
                )
            )
        return out


def dead_share(layers: list[LayerSummary]) -> float:
    """The share of ReLU-family units (over every ReLU call site) that never fired; nan when
    the model calls no ReLU."""
    relu = [s for s in layers if s.kind == "relu" and s.units]
    units = sum(s.units for s in relu)
    return sum(s.dead_fraction * s.units for s in relu) / units if units else math.nan
