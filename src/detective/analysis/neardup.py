"""Near-duplicate search across splits without an all-pairs matrix.

Each image becomes a small descriptor: a 16×16 grey thumbnail, mean-centred and L2-normalised,
so cosine similarity is invariant to brightness and contrast changes and close to 1 only for the
same picture (re-encoded, resized, slightly re-coloured). The nearest train image of every val
image is found by blocked matrix products keeping a running best per row: memory is
O(block_q × block_b), never O(n_val × n_train). Exact copies are found by hashing pixels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

THUMB = 16


@dataclass(frozen=True)
class Nearest:
    index: np.ndarray  # [n_query] row of `base` most similar to each query row
    similarity: np.ndarray  # [n_query] cosine similarity to it


def descriptors(x: torch.Tensor) -> np.ndarray:
    """[B, C, H, W] pixels (any range) → [B, THUMB*THUMB] float32 unit vectors."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    with torch.no_grad():
        grey = x.float().mean(1, keepdim=True)
        shrink = grey.shape[-1] > THUMB or grey.shape[-2] > THUMB
        thumb = F.interpolate(
            grey, size=(THUMB, THUMB), mode="bilinear", antialias=shrink, align_corners=False
        ).flatten(1)
        thumb = thumb - thumb.mean(1, keepdim=True)
        # A constant image has no direction: leave it at zero (similarity 0 with everything).
        thumb = thumb / thumb.norm(dim=1, keepdim=True).clamp_min(1e-6)
    return thumb.cpu().numpy().astype(np.float32, copy=False)


def pixel_hash(x: torch.Tensor) -> list[str]:
    """A content hash per image of a [B, C, H, W] batch (exact duplicates share it)."""
    arr = x.detach().cpu().contiguous().numpy()
    return [hashlib.blake2b(a.tobytes(), digest_size=12).hexdigest() for a in arr]


def nearest(
    query: np.ndarray, base: np.ndarray, block_q: int = 2048, block_b: int = 8192
) -> Nearest:
    """For each query row the most similar base row (rows are unit vectors), blocked."""
    n = len(query)
    best = np.full(n, -np.inf, dtype=np.float32)
    where = np.zeros(n, dtype=np.int64)
    if len(base) == 0 or n == 0:
        return Nearest(where, np.zeros(n, dtype=np.float32))
    for qs in range(0, n, block_q):
        q = query[qs : qs + block_q]
        b_best = best[qs : qs + block_q]
        b_where = where[qs : qs + block_q]
        for bs in range(0, len(base), block_b):
            sims = q @ base[bs : bs + block_b].T
            arg = sims.argmax(1)
            val = sims[np.arange(len(q)), arg]
            better = val > b_best
            b_best[better] = val[better]
            b_where[better] = arg[better] + bs
            del sims
    return Nearest(where, best)


def nearest_brute_force(query: np.ndarray, base: np.ndarray) -> Nearest:
    """The baseline: the full similarity matrix in memory (used by the benchmark only)."""
    sims = query @ base.T
    arg = sims.argmax(1)
    return Nearest(arg, sims[np.arange(len(query)), arg])
