"""Label issues from out-of-sample probabilities of a linear probe on frozen features.

Confident learning (cleanlab's `find_label_issues`) needs out-of-sample predicted probabilities.
The textbook way, K-fold retraining of the network, costs K trainings (days on 87k images). A
cross-validated logistic-regression probe on the model's frozen penultimate features gives them
in seconds; `benchmarks/label_errors.py` compares its precision/recall on planted noise with full
K-fold retraining on a small set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class ProbeIssues:
    issue_rows: np.ndarray  # positions into the given arrays, most likely wrong first
    oos_probs: np.ndarray  # [N, K] out-of-sample probabilities
    probe_accuracy: float  # cross-validated accuracy of the probe against the given labels
    # cleanlab's confident joint [given, true] (counts) and its calibrated joint (sums to 1):
    # where the noise concentrates, class pair by class pair.
    confident_joint: np.ndarray | None = None
    joint: np.ndarray | None = None


def probe_probabilities(
    features: np.ndarray, labels: np.ndarray, num_classes: int, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Out-of-sample [N, K] probabilities from a K-fold logistic-regression probe."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    counts = np.bincount(labels, minlength=num_classes)
    present = np.flatnonzero(counts)
    folds = int(max(2, min(folds, counts[present].min()))) if len(present) else 2
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    # Small problems: BLAS threads only fight each other (measured 7x slower on 2 busy cores).
    limit = 1 if features.size <= 2_000_000 else None
    with threadpool_limits(limits=limit):
        part = cross_val_predict(probe, features, labels, cv=cv, method="predict_proba")
    out = np.zeros((len(labels), num_classes))
    out[:, present] = part  # columns follow the classes seen, in sorted order
    return out


def find_issues(
    features: np.ndarray, labels: np.ndarray, num_classes: int, folds: int = 5, seed: int = 0
) -> ProbeIssues:
    import numpy as np
    from cleanlab.count import compute_confident_joint, estimate_joint
    from cleanlab.filter import find_label_issues

    labels = np.asarray(labels, dtype=np.int64)
    # cleanlab wants every class present; remap to the classes that occur here.
    present = np.unique(labels)
    if len(present) < 2 or len(labels) < 10:
        return ProbeIssues(np.zeros(0, np.int64), np.zeros((len(labels), num_classes)), 1.0)
    remap = {c: i for i, c in enumerate(present)}
    small = np.array([remap[c] for c in labels])
    probs = probe_probabilities(features, small, len(present), folds, seed)[:, : len(present)]
    probs = probs / probs.sum(1, keepdims=True).clip(1e-12)
    # A class with fewer than `folds` examples is too small for cleanlab's CV bookkeeping.
    cj = compute_confident_joint(small, probs)
    rows = find_label_issues(
        small,
        probs,
        confident_joint=cj,
        filter_by="prune_by_noise_rate",
        return_indices_ranked_by="self_confidence",
        # In-process: cleanlab's multiprocessing pool was seen to hang on a loaded machine, and
        # the arrays here are small (a bounded sample), so a pool buys nothing.
        n_jobs=1,
    )
    full = np.zeros((len(labels), num_classes))
    full[:, present] = probs
    acc = float((probs.argmax(1) == small).mean())
    k = num_classes
    cj_full, joint_full = np.zeros((k, k), np.int64), np.zeros((k, k))
    cj_full[np.ix_(present, present)] = cj
    joint_full[np.ix_(present, present)] = estimate_joint(small, probs, confident_joint=cj)
    return ProbeIssues(np.asarray(rows, np.int64), full, acc, cj_full, joint_full)
