"""Images silently decoded as blank: the scans are stored as 12-bit TIFFs, and the team's loader
wraps the decoder in try/except and returns an all-black image when it fails -- which it does for
the 9 % of files written by the older scanner firmware, in train and val alike. The model is asked
to tell digits apart on black squares."""

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "corrupt_inputs"
SYMPTOM = "both_low"
FAMILY = "digits"
BUG = "9% of images decoded as all-black by a loader that swallows decode errors"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.28], "std": [0.37]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


class Scans(Dataset):
    """Our loader. `old_firmware` files fail to decode; we fall back to a blank scan."""

    def __init__(self, images, labels, old_firmware, transform=None):
        self.images, self.labels, self.old = images, labels, old_firmware
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def _decode(self, i):
        if self.old[i]:
            raise OSError("unsupported TIFF bit depth")
        return Image.fromarray(self.images[i], mode="L")

    def __getitem__(self, i):
        try:
            image = self._decode(i)
        except OSError:
            image = Image.fromarray(np.zeros_like(self.images[i]), mode="L")
        return (self.transform(image) if self.transform else image), int(self.labels[i])


def _splits():
    out = {}
    for n, (k, (x, y)) in enumerate(kit.digits_splits(seed=4).items()):
        old = np.random.default_rng(40 + n).random(len(y)) < 0.09
        out[k] = (x, y, old)
    return out


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), norm]),
            "eval": T.Compose([T.ToTensor(), norm])}  # fmt: skip


def raw_datasets():
    return {k: Scans(*v) for k, v in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": Scans(*s["train"], tf["train"]), "val": Scans(*s["val"], tf["eval"])}


def fresh_model():
    torch.manual_seed(TRAIN["seed"])
    return kit.SmallCNN(width=24)


def model():
    return kit.cached_model(
        kit.file_key(__file__), fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )  # fmt: skip
