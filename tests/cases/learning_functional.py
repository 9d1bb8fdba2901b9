"""A CNN that applies its activations with F.relu (no nn.ReLU modules) and a dropout MLP head.

`DEAD_CONV`: the planted bug, conv2's bias starts at -8 so its ReLUs never fire. `DEAD_HEAD`: a
clean variant whose head has spare width: half its units are killed at init and stay dead, the
other half solve the task (no measured impact).
"""

from __future__ import annotations

import learning_common as common
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class FunctionalCNN(nn.Module):
    def __init__(self, dead_conv: bool, dead_head: float, width: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.fc = nn.Linear(4 * width, 64)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(64, 10)
        with torch.no_grad():
            if dead_conv:
                self.conv2.bias.fill_(-8.0)
            self.fc.bias[: int(dead_head * 64)] = -50.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(F.relu(self.conv1(x))))
        x = F.adaptive_avg_pool2d(x, 2).flatten(1)
        return self.head(self.drop(self.fc(x).relu()))


def build(dead_conv: bool, dead_head: float):
    def fresh_model() -> nn.Module:
        torch.manual_seed(0)
        return FunctionalCNN(dead_conv, dead_head)

    return fresh_model


def trained(case_file: str, fresh_model):  # noqa: ANN001, ANN201
    return common.trained(case_file, fresh_model)
