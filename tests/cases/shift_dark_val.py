"""Planted distribution shift: val comes from another scanner whose images are darker (raw pixels
× 0.45); the pipeline treats both splits alike. The model is the clean digits model."""

from torchvision import transforms as T  # noqa: N812

from detective.casekit.demo import kit

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}
TRAIN = {"epochs": 10, "batch_size": 64, "lr": 2e-3, "seed": 0}


def _splits():
    s = kit.digits_splits()
    x, y = s["val"]
    s["val"] = ((x * 0.45).round().astype(x.dtype), y)
    return s


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {
        "train": T.Compose([T.RandomAffine(degrees=8), T.ToTensor(), norm]),
        "eval": T.Compose([T.ToTensor(), norm]),
    }


def raw_datasets():
    return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}


def datasets():
    tf, s = transforms(), _splits()
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
