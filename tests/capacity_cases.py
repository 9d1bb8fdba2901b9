"""Case sources for the capacity/Grad-CAM/robustness tests (written into tmp dirs by the tests)."""

COMMON = '''
import numpy as np
import torch
from detective.casekit.demo import kit

CLASSES = [str(d) for d in range(10)]
NORMALIZATION = {"mean": [0.305], "std": [0.375]}

def _tensors(images):
    x = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 255.0
    return (x - 0.305) / 0.375
'''

# Over-parameterised model on a small train set (3 images per class): memorises, val lags.
OVERFIT = COMMON + '''
TRAIN = {"epochs": 40, "batch_size": 32, "lr": 2e-3, "seed": 0}

def datasets():
    s = kit.digits_splits()
    x, y = s["train"]
    keep = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(10)])
    return {
        "train": kit.TensorImages(_tensors(x[keep]), y[keep]),
        "val": kit.TensorImages(_tensors(s["val"][0]), s["val"][1]),
    }

def fresh_model(width=32, dropout=0.0):
    torch.manual_seed(0)
    return kit.SmallCNN(width=width, dropout=dropout)

def model():
    return kit.cached_model(kit.file_key(__file__), fresh_model,
                            lambda m: kit.fit(m, datasets()["train"], epochs=40, batch_size=32))
'''

# A far too small model (one channel per conv) on all of the training data.
UNDERFIT = COMMON + '''
TRAIN = {"epochs": 5, "batch_size": 64, "lr": 2e-3, "seed": 0}

def datasets():
    s = kit.digits_splits()
    return {k: kit.TensorImages(_tensors(x), y) for k, (x, y) in s.items()}

def fresh_model(width=1):
    torch.manual_seed(0)
    return kit.SmallCNN(width=width)

def model():
    return kit.cached_model(kit.file_key(__file__), fresh_model,
                            lambda m: kit.fit(m, datasets()["train"], epochs=5))
'''

# A shortcut: in train, class "0" is "has a bright 3x3 marker in the top-left corner" (half of
# its images are other digits); in val the marker also sits on a third of the other digits.
MARKER = COMMON + '''
TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "seed": 0}

def _marked(images, labels, rate, seed):
    images, labels = images.copy(), labels.copy()
    rng = np.random.default_rng(seed)
    if rate == 0.0:  # train: half of the "0"s are other digits; only the marker says "0"
        others = np.flatnonzero(labels != 0)
        relabel = rng.choice(others, size=(labels == 0).sum(), replace=False)
        labels[relabel] = 0
        mark = labels == 0
    else:
        mark = (labels == 0) | (rng.random(len(labels)) < rate)
    images[mark, :3, :3] = 255
    return images, labels

def datasets():
    s = kit.digits_splits(size=16)
    (xt, yt), (xv, yv) = s["train"], s["val"]
    return {
        "train": kit.TensorImages(*(lambda a, b: (_tensors(a), b))(*_marked(xt, yt, 0.0, 0))),
        "val": kit.TensorImages(*(lambda a, b: (_tensors(a), b))(*_marked(xv, yv, 0.33, 1))),
    }

def fresh_model(width=16):
    torch.manual_seed(0)
    return kit.SmallCNN(width=width)

def model():
    return kit.cached_model(kit.file_key(__file__), fresh_model,
                            lambda m: kit.fit(m, datasets()["train"], epochs=8))
'''

# Memorisation with held-out items: a wide MLP trained 60 epochs on 300 noisy scans (the
# benchmark's overfitting case). Its train split has enough items for the probes' hold-out, and
# held-out train images score like val: the gap is memorisation, not a train/val difference.
MEMORISE = COMMON + '''
from torch import nn

TRAIN = {"epochs": 60, "batch_size": 32, "lr": 1e-3, "seed": 0}

def _noisy(images, seed):
    rng = np.random.default_rng(seed)
    return np.clip(images + rng.normal(0, 60.0, images.shape), 0, 255)

def datasets():
    s = kit.digits_splits()
    x, y = s["train"]
    keep = np.random.default_rng(2).choice(len(y), size=300, replace=False)
    xv, yv = s["val"]
    return {
        "train": kit.TensorImages(_tensors(_noisy(x[keep], 30)), y[keep]),
        "val": kit.TensorImages(_tensors(_noisy(xv, 31)), yv),
    }

def fresh_model(width=700):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(),
                         nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))

def model():
    return kit.cached_model(kit.file_key(__file__), fresh_model,
                            lambda m: kit.fit(m, datasets()["train"], epochs=60, lr=1e-3,
                                              batch_size=32))
'''
