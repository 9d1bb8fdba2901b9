"""Train/eval preprocessing differ: the eval transform still resizes to the 12-pixel input of an
earlier model version, while training feeds the native 8x8 scans. The CNN's global pooling makes
it run without an error, on inputs it never saw."""

from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

EXPECTED = "preprocessing_parity"
SYMPTOM = "train_high_val_low"
FAMILY = "digits"
BUG = "eval transform resizes to 12x12, training uses 8x8"

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), norm]),
        "eval": T.Compose([T.Resize(12), T.ToTensor(), norm]),
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
