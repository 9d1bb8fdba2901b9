"""An augmentation that changes the label: random vertical and horizontal flips, copied from a
satellite-imagery pipeline. A flipped 6 is a 9; a mirrored 2 looks like a 5."""

from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "augmentation_breaks_labels"
SYMPTOM = "train_high_val_low"
FAMILY = "digits"
BUG = "RandomVerticalFlip + RandomHorizontalFlip on digits"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose(
            [T.RandomVerticalFlip(0.5), T.RandomHorizontalFlip(0.5), T.ToTensor(), norm]
        ),
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
