"""An augmentation that changes what a label means: the team reused the augmentation list of its
natural-image classifier, with a horizontal flip at p = 0.5. A mirrored 2 looks like a 5, a
mirrored 3 like an epsilon, a mirrored 7 like nothing in the label set; the model is trained to
call both versions by the same name."""

from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "augmentation_breaks_labels"
SYMPTOM = "train_high_val_low"
FAMILY = "digits"
BUG = "RandomHorizontalFlip on digits"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {"train": T.Compose([T.RandomHorizontalFlip(), T.RandomAffine(degrees=5),
                                T.ToTensor(), norm]),
            "eval": T.Compose([T.ToTensor(), norm])}  # fmt: skip


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in kit.digits_splits(seed=10).items()}


def datasets():
    tf, s = transforms(), kit.digits_splits(seed=10)
    return {"train": kit.ArrayImages(*s["train"], tf["train"]),
            "val": kit.ArrayImages(*s["val"], tf["eval"])}  # fmt: skip


def fresh_model():
    return kit.SmallCNN(width=16)


def model():
    return kit.cached_model(
        kit.file_key(__file__), fresh_model,
        lambda m: kit.fit(m, datasets()["train"], epochs=TRAIN["epochs"], lr=TRAIN["lr"]),
    )  # fmt: skip
