"""Images decoded as blank (photos): the crops are stored as progressive JPEGs, and the loader's
fallback for a decoder error is a black image of the right size. One crop in nine (train and
val) hits that path, so the model is trained and scored on black squares with labels."""

import _synth
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "corrupt_inputs"
SYMPTOM = "both_low"
FAMILY = "photos"
BUG = "11% of crops replaced by black images by a decode fallback"

CLASSES = list(_synth.PHOTOS)
NORMALIZATION = {"mean": [0.5, 0.45, 0.4], "std": [0.25, 0.25, 0.25]}
TRAIN = {"epochs": 6, "batch_size": 64, "lr": 2e-3, "seed": 0}


class PhotoCrops(Dataset):
    """The team's loader: (transformed PIL crop, label) from an (N, 32, 32, 3) uint8 array."""

    def __init__(self, crops, labels, transform=None):
        self.crops, self.labels, self.transform = crops, labels, transform

    def __len__(self):
        return len(self.labels)

    def _decode(self, i):
        if i % 9 == 4:  # the progressive JPEGs the decoder cannot read
            raise OSError("broken data stream")
        return Image.fromarray(self.crops[i])

    def __getitem__(self, i):
        try:
            image = self._decode(i)
        except OSError:  # unreadable: use a blank image and carry on
            image = Image.new("RGB", self.crops[i].shape[1::-1])
        return (self.transform(image) if self.transform else image), int(self.labels[i])


def _splits():
    return {"train": _synth.photo_crops("train", 300, seed=102),
            "val": _synth.photo_crops("val", 100, seed=103)}  # fmt: skip


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), norm]),
            "eval": T.Compose([T.ToTensor(), norm])}  # fmt: skip


def raw_datasets():
    return {k: PhotoCrops(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
    return {"train": PhotoCrops(*s["train"], tf["train"]),
            "val": PhotoCrops(*s["val"], tf["eval"])}  # fmt: skip


def fresh_model():
    return kit.SmallCNN(in_channels=3, width=16, num_classes=len(CLASSES))


def model():
    return kit.cached_model(
        kit.file_key(__file__) + kit.file_key(_synth.__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"],
                          batch_size=TRAIN["batch_size"], lr=TRAIN["lr"]),
    )  # fmt: skip
