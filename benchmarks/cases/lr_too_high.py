"""Learning rate too high: AdamW at 0.3 (a value meant for SGD on another project). The loss
jumps around and training ends far from where the same CNN gets at 2e-3."""

from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "lr_too_high"
SYMPTOM = "low_train_acc"
FAMILY = "digits"
BUG = "AdamW learning rate 0.3 instead of ~2e-3"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 0.3, "seed": 0}


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
    return kit.SmallCNN()


def model():
    return kit.cached_model(
        kit.file_key(__file__),
        fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )
