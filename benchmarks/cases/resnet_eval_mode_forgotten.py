"""Forgotten model.eval() with batch norm (resnet): the team's evaluation loop never switches the
ResNet-18 to eval mode and runs batches of 4, so every batch-norm layer normalizes with the
statistics of four images. The number it prints (reported_metric) is far below the model's."""

import _synth
import torch
import torchvision
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "eval_mode_bug"
SYMPTOM = "train_high_val_low"
FAMILY = "resnet"
BUG = "eval loop runs the model in train() mode, batch 4"

CLASSES = list(_synth.SCENES)
NORMALIZATION = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
TRAIN = {"epochs": 5, "batch_size": 16, "lr": 1e-3, "weight_decay": 1e-4, "seed": 0}


class SceneViews(Dataset):
    """Our loader: (transformed PIL image, label) from an (N, 32, 32, 3) uint8 array."""

    def __init__(self, images, labels, transform=None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = Image.fromarray(self.images[i])
        return (self.transform(image) if self.transform else image), int(self.labels[i])


def _splits():
    return {"train": _synth.scene_crops("train", 150, size=32, seed=48),
            "val": _synth.scene_crops("val", 25, size=32, seed=49)}  # fmt: skip


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), norm]),
            "eval": T.Compose([T.ToTensor(), norm])}  # fmt: skip


def raw_datasets():
    return {k: SceneViews(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": SceneViews(*s["train"], tf["train"]),
            "val": SceneViews(*s["val"], tf["eval"])}  # fmt: skip


def fresh_model():
    return torchvision.models.resnet18(weights=None, num_classes=len(CLASSES))


def optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=TRAIN["lr"],
                             weight_decay=TRAIN["weight_decay"])  # fmt: skip


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], optimizer=optimizer),
    )  # fmt: skip


def reported_metric():
    """The team's eval loop, as written (no net.eval())."""
    net = model()
    net.train()
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(datasets()["val"], batch_size=4)
    hits = total = 0
    with torch.no_grad():
        for x, y in loader:
            hits += int((net(x).argmax(1) == y).sum())
            total += len(y)
    return hits / total
