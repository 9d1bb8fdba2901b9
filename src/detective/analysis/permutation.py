"""Is the eval split's confusion matrix a permutation? Labels whose indices are shifted against
train (a class folder missing in an ImageFolder-style val tree) give a model that is right about
the images but "wrong" about every label: its confusion matrix is a non-identity permutation.

The permutation is the Hungarian assignment (scipy) on the confusion matrix, cross-fitted: fitted
on one half of the items and scored on the other, so fitting can never manufacture a gain on a
clean model. Import inside functions (numpy, scipy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PermutationFit:
    n: int
    identity_accuracy: float  # accuracy as labelled
    permuted_accuracy: float  # held-out accuracy with labels mapped by the other half's fit
    gained: int  # held-out items right only under the permutation
    lost: int  # held-out items right only as labelled
    mapping: tuple[int, ...]  # fitted on all items: given label → the class the model sees
    moved: tuple[int, ...]  # given labels (with items) that the permutation moves

    @property
    def z(self) -> float:
        """Sign test of gained vs lost (paired, per item): standard errors of the gain."""
        both = self.gained + self.lost
        return (self.gained - self.lost) / both**0.5 if both else 0.0


def _assign(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment

    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (y, pred), 1)
    rows, cols = linear_sum_assignment(confusion, maximize=True)
    perm = np.arange(k)
    perm[rows] = cols
    # A label with no items here keeps itself: no evidence moves it.
    empty = confusion.sum(1) == 0
    perm[empty] = np.arange(k)[empty]
    return perm


@dataclass(frozen=True)
class CrossFit:
    """Per item: is the prediction right once its label is mapped by the permutation fitted on
    the *other* half? And the two halves' permutations (given label → class)."""

    correct: np.ndarray
    fold_maps: tuple[tuple[int, ...], tuple[int, ...]]

    @property
    def is_identity(self) -> bool:
        return all(m == tuple(range(len(m))) for m in self.fold_maps)


def cross_fit(y: np.ndarray, pred: np.ndarray, k: int, seed: int = 0) -> CrossFit:
    y, pred = np.asarray(y, np.int64), np.asarray(pred, np.int64)
    folds = np.random.default_rng(seed).permutation(len(y)) % 2
    correct = np.zeros(len(y), bool)
    maps = []
    for f in (0, 1):
        perm = _assign(y[folds != f], pred[folds != f], k)
        correct[folds == f] = pred[folds == f] == perm[y[folds == f]]
        maps.append(tuple(int(c) for c in perm))
    return CrossFit(correct, (maps[0], maps[1]))


def fit_permutation(y: np.ndarray, pred: np.ndarray, k: int, seed: int = 0) -> PermutationFit:
    y, pred = np.asarray(y, np.int64), np.asarray(pred, np.int64)
    n = len(y)
    permuted = cross_fit(y, pred, k, seed).correct
    identity = pred == y
    full = _assign(y, pred, k) if n else np.arange(k)
    present = np.bincount(y, minlength=k) > 0
    return PermutationFit(
        n=n,
        identity_accuracy=float(identity.mean()) if n else 0.0,
        permuted_accuracy=float(permuted.mean()) if n else 0.0,
        gained=int((permuted & ~identity).sum()),
        lost=int((identity & ~permuted).sum()),
        mapping=tuple(int(c) for c in full),
        moved=tuple(int(c) for c in range(k) if present[c] and full[c] != c),
    )
