"""Forward hooks on activation modules, reducing each output on the fly (memory stays flat)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class LayerSummary:
    name: str
    kind: str
    units: int
    dead_fraction: float
    zero_fraction: float
    saturated_fraction: float
    std: float


def _kind(module: Any) -> str | None:
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


class _Acc:
    """Running per-unit 'ever active', zero/saturated counts and moments of one call site."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.ever: torch.Tensor | None = None
        self.n = 0
        self.zeros = 0.0
        self.sat = 0.0
        self.s1 = 0.0
        self.s2 = 0.0

    def add(self, out: torch.Tensor) -> None:
        out = out.detach().float()
        units_dim = 1 if out.ndim >= 2 else 0
        reduce = [d for d in range(out.ndim) if d != units_dim]
        active = (out > 0).any(dim=reduce) if reduce else out > 0
        self.ever = active if self.ever is None else self.ever | active
        self.n += out.numel()
        if self.kind == "relu":
            self.zeros += float((out <= 0).sum())
        elif self.kind == "sigmoid":
            self.sat += float(((out < 0.01) | (out > 0.99)).sum())
        elif self.kind == "tanh":
            self.sat += float((out.abs() > 0.99).sum())
        self.s1 += float(out.double().sum())
        self.s2 += float(out.double().pow(2).sum())


class ActivationStats:
    """Context manager: hooks every activation module of `model`, removes the hooks on exit.

    A module called at several places with different shapes keeps one summary per shape.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self._acc: dict[tuple[str, tuple[int, ...]], _Acc] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> ActivationStats:
        for name, module in self.model.named_modules():
            kind = _kind(module)
            if kind is not None:
                self._handles.append(module.register_forward_hook(self._hook(name, kind)))
        return self

    def _hook(self, name: str, kind: str):  # noqa: ANN202
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            import torch

            if isinstance(output, torch.Tensor):
                key = (name, tuple(output.shape[1:2]))
                self._acc.setdefault(key, _Acc(kind)).add(output)

        return hook

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def summary(self) -> list[LayerSummary]:
        out = []
        shapes_per_name: dict[str, int] = {}
        for name, _ in self._acc:
            shapes_per_name[name] = shapes_per_name.get(name, 0) + 1
        for (name, shape), a in self._acc.items():
            units = int(a.ever.numel()) if a.ever is not None else 0
            dead = 1.0 - float(a.ever.float().mean()) if units and a.kind == "relu" else 0.0
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
                )
            )
        return out
