"""Tiny digits cases (8×8, an MLP, under a second of training) with one planted training-side
bug each, for the training-intervention tests. Written into tmp dirs by the tests."""

from __future__ import annotations

# Knobs (all defaults = the clean, well-trained case):
#   SCALE: inputs divided by it (1.0 → 0–255 inputs; 255 → 0–1), then standardized when STD
#   LR / OPT: the recipe's learning rate and optimizer ("adamw" | "sgd")
#   DEPTH / WIDTH / ACT: hidden layers, units, activation module ("relu" | "sigmoid" | "tanh")
#   INIT_STD / BIAS: a custom init (0 → the layers' default init)
#   FREEZE: the first hidden layer frozen (requires_grad=False) and the optimizer over the rest
#   HEAD_ONLY_OPT: the optimizer hook built over the head only (requires_grad untouched)
#   NOISE: share of train labels replaced by a random other class (the next class: PAIR_NOISE)
#   LONGTAIL: class c keeps LONGTAIL**c of its train items (0 → balanced)
#   PER_CLASS: only this many train items per class (0 → all)
#   PIXEL_NOISE: Gaussian pixel noise (sigma, 0–255 scale) on train and val
#   FLIP: the train transform flips every image vertically (an augmentation that breaks labels)
#   AUG: a benign augmentation (small random affine) in the train transform
#   EPOCHS: the user's (and the recipe's) epochs
#   MISALIGN: share of train labels the loader pairs with other images (datasets() only: the
#             raw_datasets() keep the source's pairs)
#   SOFTMAX: forward() ends with a softmax and the loss is cross-entropy (a double softmax)
#   MSE: the loss hook is MSE between the argmax-free outputs' sum and the class index
#   SLOW_UNFROZEN: seconds every training forward sleeps once the first layer trains (what
#                  unfreezing a backbone costs); SLOW_STEPS counts those forwards
TEMPLATE = '''
import time

import numpy as np
import torch
from torch import nn
from torchvision import transforms as T
from detective.casekit.demo import kit

CLASSES = [str(d) for d in range(10)]
KNOBS = {knobs!r}
K = KNOBS
TRAIN = {{"epochs": K["EPOCHS"], "batch_size": 64, "lr": K["LR"], "seed": 0}}


def _splits():
    s = kit.digits_splits()
    (x, y), (xv, yv) = s["train"], s["val"]
    rng = np.random.default_rng(1)
    if K["PIXEL_NOISE"]:  # classes overlap: the decision between them depends on the priors
        x = np.clip(x + rng.normal(0, K["PIXEL_NOISE"], x.shape), 0, 255).astype(np.uint8)
        xv = np.clip(xv + rng.normal(0, K["PIXEL_NOISE"], xv.shape), 0, 255).astype(np.uint8)
    if K["LONGTAIL"]:
        keep = np.concatenate([
            np.flatnonzero(y == c)[: max(3, int(len(y) / 10 * K["LONGTAIL"] ** c))]
            for c in range(10)
        ])
        keep.sort()
        x, y = x[keep], y[keep]
    if K["PER_CLASS"]:
        keep = np.concatenate([np.flatnonzero(y == c)[: K["PER_CLASS"]] for c in range(10)])
        keep.sort()
        x, y = x[keep], y[keep]
    if K["NOISE"]:
        y = y.copy()
        flip = rng.random(len(y)) < K["NOISE"]
        shift = 1 if K["PAIR_NOISE"] else rng.integers(1, 10, int(flip.sum()))
        y[flip] = (y[flip] + shift) % 10
    return (x, y), (xv, yv)


def _to_tensor(images):
    t = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / K["SCALE"]
    return (t - 0.3 * 255 / K["SCALE"]) / (0.37 * 255 / K["SCALE"]) if K["STD"] else t


def transforms():
    post = T.Lambda(lambda t: _to_tensor(t.numpy())[0])
    ops = [T.RandomVerticalFlip(1.0)] if K["FLIP"] else []
    if K["AUG"]:  # a benign augmentation: small shifts and rotations
        ops.append(T.RandomAffine(degrees=10, translate=(0.1, 0.1)))
    return {{
        "train": T.Compose(ops + [T.PILToTensor(), post]),
        "eval": T.Compose([T.PILToTensor(), post]),
    }}


def raw_datasets():
    (x, y), (xv, yv) = _splits()
    return {{"train": kit.ArrayImages(x, y), "val": kit.ArrayImages(xv, yv)}}


def datasets():
    (x, y), (xv, yv) = _splits()
    if K["MISALIGN"]:  # a share of the labels rotated one place against their images
        y = y.copy()
        moved = np.flatnonzero(np.random.default_rng(1).random(len(y)) < K["MISALIGN"])
        y[moved] = np.roll(y[moved], 1)
    if K["FLIP"] or K["AUG"]:  # through the transforms: augmentation is in the train pipeline
        tf = transforms()
        return {{
            "train": kit.ArrayImages(x, y, tf["train"]),
            "val": kit.ArrayImages(xv, yv, tf["eval"]),
        }}
    return {{
        "train": kit.TensorImages(_to_tensor(x), y),
        "val": kit.TensorImages(_to_tensor(xv), yv),
    }}


ACTS = {{"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}}


SLOW_STEPS = [0]


class MLP(nn.Module):
    def __init__(self, width, depth, dropout=0.0):
        super().__init__()
        layers = [nn.Flatten()]
        d = 64
        for _ in range(depth):
            layers += [nn.Linear(d, width), ACTS[K["ACT"]]()]
            d = width
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d, 10)
        with torch.no_grad():
            for m in self.body:
                if isinstance(m, nn.Linear):
                    if K["INIT_STD"]:
                        m.weight.normal_(0, K["INIT_STD"])
                    if K["BIAS"]:
                        m.bias.fill_(K["BIAS"])
        if K["FREEZE"]:
            for p in self.body[1].parameters():
                p.requires_grad = False

    def forward(self, x):
        if K["SLOW_UNFROZEN"] and self.training and self.body[1].weight.requires_grad:
            SLOW_STEPS[0] += 1  # a backbone's cost, paid only once it trains
            time.sleep(K["SLOW_UNFROZEN"])
        out = self.head(self.dropout(self.body(x)))
        return torch.softmax(out, 1) if K["SOFTMAX"] else out


class IndexMSE(nn.Module):
    """The wrong loss: regress the class index from the outputs' expected index."""

    def forward(self, out, y):
        expected = (torch.softmax(out, 1) * torch.arange(10, device=out.device)).sum(1)
        return nn.functional.mse_loss(expected, y.float())


def loss():
    return IndexMSE() if K["MSE"] else nn.CrossEntropyLoss()


def fresh_model(width=K["WIDTH"], dropout=0.0):
    return MLP(width, K["DEPTH"], dropout)


def optimizer(model):
    params = model.head.parameters() if K["HEAD_ONLY_OPT"] else (
        p for p in model.parameters() if p.requires_grad)
    if K["OPT"] == "sgd":
        return torch.optim.SGD(params, lr=K["LR"], momentum=0.9)
    return torch.optim.AdamW(params, lr=K["LR"])


def model():
    return kit.cached_model(
        kit.file_key(__file__), fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=K["EPOCHS"], optimizer=optimizer,
                          loss_fn=loss()),
    )
'''

CLEAN = {
    "SCALE": 255.0, "STD": True, "LR": 3e-3, "OPT": "adamw", "DEPTH": 1, "WIDTH": 64,
    "ACT": "relu", "INIT_STD": 0.0, "BIAS": 0.0, "FREEZE": False, "HEAD_ONLY_OPT": False,
    "NOISE": 0.0, "PAIR_NOISE": False, "LONGTAIL": 0.0, "PER_CLASS": 0, "PIXEL_NOISE": 0.0,
    "FLIP": False, "AUG": False, "EPOCHS": 30, "SOFTMAX": False, "MSE": False, "MISALIGN": 0.0,
    "SLOW_UNFROZEN": 0.0,
}


def case_source(**knobs: object) -> str:
    unknown = set(knobs) - set(CLEAN)
    if unknown:
        raise KeyError(f"unknown knobs {sorted(unknown)}")
    return TEMPLATE.format(knobs={**CLEAN, **knobs})
