"""A clean case that trains with its own train() hook (the learning checks must drive it)."""

import learning_common as common
import torch

from detective.casekit.demo import kit

CLASSES = common.CLASSES
TRAIN = {"epochs": 2, "batch_size": 64, "lr": 2e-3, "seed": 0}


def datasets():
    return common.tensor_splits()


def fresh_model():
    torch.manual_seed(0)
    return kit.SmallCNN()


def train(model, loader, epochs, on_step):
    opt = torch.optim.AdamW(model.parameters(), lr=TRAIN["lr"])
    model.train()
    step = 0
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            on_step(step, loss.item())
            step += 1


def model():
    return common.trained(__file__, fresh_model, epochs=TRAIN["epochs"], lr=TRAIN["lr"])
