"""Leakage search at scale: blocked nearest neighbours vs the all-pairs matrix, same run.

    python benchmarks/pipeline.py [--train 20000] [--val 5000]

Synthetic images (smooth random fields, 32×32 RGB) go through the check's own descriptor; 2% of
val are planted near copies of train images. Both searches must find the same neighbours; the
script prints time, peak traced memory (tracemalloc: numpy buffers) and the ratios.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from detective.analysis.neardup import descriptors, nearest, nearest_brute_force


def synthetic(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 6, 6, generator=g)
    return F.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)


def describe(images: torch.Tensor) -> np.ndarray:
    return np.concatenate([descriptors(images[i : i + 2048]) for i in range(0, len(images), 2048)])


def measure(fn, *args):  # noqa: ANN001, ANN201
    tracemalloc.start()
    start = time.perf_counter()
    out = fn(*args)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, elapsed, peak


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=20_000)
    p.add_argument("--val", type=int, default=5_000)
    args = p.parse_args()
    torch.set_num_threads(2)
    train, val = synthetic(args.train, 0), synthetic(args.val, 1)
    planted = max(1, args.val // 50)
    val[:planted] = (train[:planted] * 0.9 + 0.05).clamp(0, 1)  # near copies
    t0 = time.perf_counter()
    base, query = describe(train), describe(val)
    print(f"descriptors for {args.train}+{args.val} images: {time.perf_counter() - t0:.2f} s")

    fast, t_fast, m_fast = measure(nearest, query, base)
    slow, t_slow, m_slow = measure(nearest_brute_force, query, base)
    assert (fast.index == slow.index).all(), "the blocked search must equal the brute force"
    found = int((fast.similarity[:planted] >= 0.997).sum())
    false = int((fast.similarity[planted:] >= 0.997).sum())
    print(f"{args.val} val × {args.train} train, {base.shape[1]}-d descriptors")
    print(f"blocked search : {t_fast:6.2f} s, peak {m_fast / 2**20:8.1f} MiB")
    print(f"brute force    : {t_slow:6.2f} s, peak {m_slow / 2**20:8.1f} MiB")
    print(f"time ratio (brute/blocked)   : {t_slow / t_fast:.2f}x")
    print(f"memory ratio (brute/blocked) : {m_slow / m_fast:.1f}x")
    print(f"planted near copies found: {found}/{planted}; false matches: {false}")
    full = 50_000 * 10_000 * 4 / 2**30
    print(
        f"(an all-pairs float32 matrix for 50k×10k would need {full:.1f} GiB; the blocked "
        f"search needs {2048 * 8192 * 4 / 2**20:.0f} MiB per block at most)"
    )


if __name__ == "__main__":
    main()
