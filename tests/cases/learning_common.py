"""Shared pieces of the planted learning-stage cases: normalised digits tensors and small nets.

Each `learning_*.py` case states only its own planted bug; everything is tiny so a case trains
in a second or two on CPU (weights cached per test run by `kit.cached_model`).
"""

from __future__ import annotations

import torch
from torch import nn

from detective.casekit.demo import kit

CLASSES = [str(d) for d in range(10)]
MEAN, STD = 0.305, 0.375


def tensor_splits() -> dict[str, kit.TensorImages]:
    out = {}
    for name, (x, y) in kit.digits_splits().items():
        t = (torch.as_tensor(x, dtype=torch.float32)[:, None] / 255.0 - MEAN) / STD
        out[name] = kit.TensorImages(t, y)
    return out


class PlainCNN(nn.Module):
    """A small CNN without batch norm, so a bias reaches its ReLU unchanged."""

    def __init__(self, width: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.act2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.head(torch.flatten(self.pool(x), 1))


class DeepSigmoidMLP(nn.Module):
    """Many sigmoid layers with default init: the textbook vanishing-gradient network."""

    def __init__(self, depth: int = 10, width: int = 64, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        size = 64
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.Sigmoid()]
            size = width
        layers.append(nn.Linear(size, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def trained(case_file: str, build, epochs: int = 3, lr: float = 2e-3, **fit_kw) -> nn.Module:
    """The case's "checkpoint": `build()` trained briefly with the case's own recipe, cached."""
    return kit.cached_model(
        kit.file_key(case_file, epochs, lr),
        build,
        lambda m: kit.fit(m, tensor_splits()["train"], epochs=epochs, lr=lr, **fit_kw),
    )
