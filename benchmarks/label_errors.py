"""Label errors: the cheap out-of-sample probabilities (a cross-validated linear probe on the
model's frozen penultimate features, `detective.analysis.labelissues`) vs full K-fold retraining of
the network, both fed to cleanlab's `find_label_issues`, on a small real set with planted noise.

    python benchmarks/label_errors.py [--noise 0.1] [--folds 5] [--epochs 8]

Data: scikit-learn's digits train split (1,347 real 8x8 scans) with `noise` of the labels
flipped to another class. The "user's model" is a SmallCNN trained once on the noisy labels; the
K-fold baseline trains K more SmallCNNs, each on K-1 folds, and predicts the held-out fold.
Prints precision / recall of the flagged examples against the planted flips, and wall time.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def train(x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> torch.nn.Module:
    from detective.casekit.demo import kit

    torch.manual_seed(seed)
    model = kit.SmallCNN(width=16)
    return kit.fit(model, kit.TensorImages(x, y), epochs=epochs, lr=3e-3, seed=seed)


def score(flagged: np.ndarray, planted: set[int]) -> tuple[float, float]:
    hits = len(set(flagged.tolist()) & planted)
    return (hits / len(flagged) if len(flagged) else 0.0), hits / len(planted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, default=0.10)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))

    from cleanlab.filter import find_label_issues
    from sklearn.model_selection import StratifiedKFold

    from detective.analysis.labelissues import find_issues
    from detective.casekit.demo import kit

    images, labels = kit.digits_splits()["train"]
    x = (torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 255 - 0.305) / 0.375
    rng = np.random.default_rng(args.seed)
    planted = np.sort(rng.choice(len(labels), int(args.noise * len(labels)), replace=False))
    noisy = labels.copy()
    noisy[planted] = (labels[planted] + rng.integers(1, 10, len(planted))) % 10
    y = torch.tensor(noisy)
    truth = set(planted.tolist())
    print(
        f"digits train: {len(labels)} images, {len(planted)} labels flipped "
        f"({args.noise:.0%}); SmallCNN width 16, {args.epochs} epochs per training"
    )

    start = time.perf_counter()
    model = train(x, y, args.epochs, args.seed)
    t_model = time.perf_counter() - start
    start = time.perf_counter()
    with torch.no_grad():
        feats = torch.flatten(model.features(x), 1).numpy()
    probe = find_issues(feats, noisy, 10, folds=args.folds, seed=args.seed)
    t_probe = time.perf_counter() - start
    p_probe, r_probe = score(probe.issue_rows, truth)

    start = time.perf_counter()
    oos = np.zeros((len(labels), 10))
    cv = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
    for k, (tr, te) in enumerate(cv.split(feats, noisy)):
        m = train(x[tr], y[tr], args.epochs, args.seed + 1 + k)
        with torch.no_grad():
            oos[te] = m(x[te]).softmax(1).numpy()
    kfold = find_label_issues(
        noisy, oos, filter_by="prune_by_noise_rate", return_indices_ranked_by="self_confidence"
    )
    t_kfold = time.perf_counter() - start
    p_kfold, r_kfold = score(np.asarray(kfold), truth)

    print(f"{'method':<44} {'flagged':>7} {'precision':>9} {'recall':>7} {'seconds':>8}")
    print(
        f"{'linear probe on frozen features (CV ' + str(args.folds) + '-fold)':<44} "
        f"{len(probe.issue_rows):>7} {p_probe:>9.3f} {r_probe:>7.3f} {t_probe:>8.2f}"
    )
    print(
        f"{'full ' + str(args.folds) + '-fold retraining of the network':<44} "
        f"{len(kfold):>7} {p_kfold:>9.3f} {r_kfold:>7.3f} {t_kfold:>8.2f}"
    )
    print(
        f"the user's model itself took {t_model:.1f} s to train; the probe costs "
        f"{t_probe / t_kfold:.3f}x the K-fold baseline's time"
    )


if __name__ == "__main__":
    main()
