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


def nearest_k(query: np.ndarray, base: np.ndarray, k: int, block_b: int = 4096) -> np.ndarray:
    """[n_query, min(k, n_base)] rows of `base` most similar to each query row (unordered),
    blocked over base so memory stays O(n_query × block_b)."""
    n, k = len(query), min(k, len(base))
    if n == 0 or k == 0:
        return np.zeros((n, 0), np.int64)
    best_val = np.full((n, 0), -np.inf, np.float32)
    best_idx = np.zeros((n, 0), np.int64)
    for bs in range(0, len(base), block_b):
        sims = query @ base[bs : bs + block_b].T
        vals = np.concatenate([best_val, sims], 1)
        idx = np.concatenate([best_idx, np.arange(bs, bs + sims.shape[1])[None].repeat(n, 0)], 1)
        keep = np.argpartition(-vals, k - 1, axis=1)[:, :k] if vals.shape[1] > k else None
        if keep is not None:
            vals, idx = np.take_along_axis(vals, keep, 1), np.take_along_axis(idx, keep, 1)
        best_val, best_idx = vals, idx
    return best_idx


@dataclass(frozen=True)
class Aligned:
    similarity: float  # the best centred cosine over the alignments tried
    train_row: int  # row of the candidate that gave it
    mirrored: bool
    shift: tuple[int, int]  # (dy, dx) of the val image against its twin
    crop: int = 0  # pixels one image was cropped by before being resized back (0: same scale)


def _centred_cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Centred cosine of each of [m, …] against each of [c, …] → [m, c]."""
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-6)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-6)
    return a @ b.T


def alignment_scores(
    query: np.ndarray, candidates: np.ndarray, max_shift: int
) -> tuple[np.ndarray, Aligned]:
    """[c] each candidate's best centred cosine with `query` over its mirror image and shifts
    up to `max_shift` pixels, compared on the overlap (no wrap-around), and the best alignment
    of all: a copy that was shifted, cropped at the border or mirrored scores as high as an
    unmodified one."""
    h, w = query.shape
    variants = np.stack([query, query[:, ::-1]])
    scores = np.full(len(candidates), -1.0, np.float32)
    best = Aligned(-1.0, 0, False, (0, 0))
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            a = variants[:, max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)]
            b = candidates[:, max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)]
            sims = _centred_cos(a, b)
            scores = np.maximum(scores, sims.max(0))
            v, c = np.unravel_index(int(sims.argmax()), sims.shape)
            if sims[v, c] > best.similarity:
                best = Aligned(float(sims[v, c]), int(c), bool(v), (dy, dx))
    return scores, best


def _shrunk(images: np.ndarray, side: int) -> np.ndarray:
    """[n, H, W] → [n, side, side], antialiased (the resize a saved crop went through)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    t = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))[:, None]
    return F.interpolate(
        t, size=(side, side), mode="bilinear", antialias=True, align_corners=False
    )[:, 0].numpy()


def _windows(image: np.ndarray, side: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Every side×side window of [..., H, W] → [..., n_windows, side*side], and their corners."""
    view = np.lib.stride_tricks.sliding_window_view(image, (side, side), axis=(-2, -1))
    corners = [(y, x) for y in range(view.shape[-4]) for x in range(view.shape[-3])]
    return view.reshape(*image.shape[:-2], len(corners), side * side), corners


def best_rescaled_alignment(query: np.ndarray, candidates: np.ndarray, max_crop: int) -> Aligned:
    """The most similar of `candidates` [c, H, W] to `query` [H, W] when one of the two is a
    crop of the other, `1..max_crop` pixels smaller, resized back (a saved RandomResizedCrop;
    either split may hold the crop), mirrored or not: the larger image's every window of the
    crop's size is compared with the other image shrunk to that size."""
    h, w = query.shape
    best = Aligned(-1.0, 0, False, (0, 0))
    if h != w or not len(candidates):
        return best
    variants = np.stack([query, query[:, ::-1]])
    # Two crop sizes: a crop between them still matches one of them within a pixel.
    for side in sorted({h - max_crop, h - max(1, max_crop // 2)}):
        if side < 4:
            continue
        # The val image is the crop: shrink it, slide it over each candidate.
        small_q = _shrunk(variants, side).reshape(2, -1)
        wins, corners = _windows(candidates, side)  # [c, n, side²]
        sims = _centred_cos(small_q, wins.reshape(-1, side * side))  # [2, c*n]
        v, flat = np.unravel_index(int(sims.argmax()), sims.shape)
        if sims[v, flat] > best.similarity:
            c, at = divmod(int(flat), len(corners))
            best = Aligned(float(sims[v, flat]), c, bool(v), corners[at], h - side)
        # The train image is the crop: shrink each candidate, slide it over the val image.
        small_c = _shrunk(candidates, side).reshape(len(candidates), -1)
        wins_q, corners = _windows(variants, side)  # [2, n, side²]
        sims = _centred_cos(wins_q.reshape(-1, side * side), small_c)  # [2*n, c]
        r, c = np.unravel_index(int(sims.argmax()), sims.shape)
        if sims[r, c] > best.similarity:
            v, at = divmod(int(r), len(corners))
            best = Aligned(float(sims[r, c]), int(c), bool(v), corners[at], side - h)
    return best


def best_alignment(query: np.ndarray, candidates: np.ndarray, max_shift: int) -> Aligned:
    """The most similar of `candidates` [c, H, W] to `query` [H, W] over its mirror image and
    shifts up to `max_shift` pixels (alignment_scores)."""
    return alignment_scores(query, candidates, max_shift)[1]
