"""Exploding gradients: an eight-layer ReLU MLP without normalization whose custom init scales
every weight matrix 1.5x above He init (a 'make it learn faster' tweak). Activations and gradients
grow ~1.5x per layer (25x over the stack); with SGD+momentum the loss spikes. The checkpoint
is the last one saved before the loss went non-finite."""

import copy
import math

import torch
from torch import nn
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "exploding_gradients"
SYMPTOM = "low_train_acc"
FAMILY = "digits"
BUG = "weights initialised at 1.5x He scale in an 8-layer ReLU MLP without normalization"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 0.01, "seed": 0}


class DeepMLP(nn.Module):
    def __init__(self, depth: int = 8, width: int = 128, gain: float = 1.5) -> None:
        super().__init__()
        dims = [64] + [width] * depth
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:], strict=False))
        self.head = nn.Linear(width, 10)
        for layer in self.layers:
            nn.init.normal_(layer.weight, std=gain * math.sqrt(2.0 / layer.in_features))
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.flatten(x, 1)
        for layer in self.layers:
            h = torch.relu(layer(h))
        return self.head(h)


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=TRAIN["lr"], momentum=0.9)


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), norm]),
        "eval": T.Compose([T.ToTensor(), norm]),
    }


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in kit.digits_splits().items()}


def datasets():
    tf, s = transforms(), kit.digits_splits()
    return {
        "train": kit.ArrayImages(*s["train"], tf["train"]),
        "val": kit.ArrayImages(*s["val"], tf["eval"]),
    }


def fresh_model():
    torch.manual_seed(TRAIN["seed"])
    return DeepMLP()


def _train(m):
    """The user's loop: keeps the last checkpoint whose loss was still finite."""
    torch.manual_seed(TRAIN["seed"])
    loader = torch.utils.data.DataLoader(datasets()["train"], batch_size=64, shuffle=True)
    opt, loss_fn = optimizer(m), nn.CrossEntropyLoss()
    saved = copy.deepcopy(m.state_dict())
    m.train()
    for _ in range(TRAIN["epochs"]):
        for x, y in loader:
            opt.zero_grad()
            loss = loss_fn(m(x), y)
            if not torch.isfinite(loss):
                m.load_state_dict(saved)
                return m.eval()
            loss.backward()
            opt.step()
        if all(torch.isfinite(p).all() for p in m.parameters()):
            saved = copy.deepcopy(m.state_dict())
    m.load_state_dict(saved)
    return m.eval()


def model():
    return kit.cached_model(kit.file_key(__file__), fresh_model, _train)
