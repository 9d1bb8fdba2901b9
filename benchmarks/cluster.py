"""Clustering 10k failures x 512-d features: wall time and peak memory on this machine.

Baseline measured in the same run: scikit-learn KMeans on the raw 512-d standardized features
(no PCA, full silhouette sample) for the same k range, to show what the PCA + sampled-silhouette
design buys. Run: python benchmarks/cluster.py [--failures 10000] [--dims 512]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np


def data(n: int, dims: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    modes = rng.integers(0, 5, n)
    centers = rng.normal(0, 1.0, (5, dims))
    feats = (centers[modes] + rng.normal(0, 1.0, (n, dims))).astype(np.float32)
    true = rng.integers(0, 10, n)
    pred = (true + rng.integers(1, 10, n)) % 10
    props = {
        p: rng.normal(0, 1, n) + 0.5 * (modes == i)
        for i, p in enumerate(("brightness", "contrast", "sharpness", "saturation"))
    }
    return feats, true, pred, np.arange(n), props, modes


def measure(fn):
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def main() -> None:
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import adjusted_rand_score, silhouette_score
    from sklearn.preprocessing import StandardScaler

    from detective.analysis.clusters import ClusterSettings, cluster_failures

    parser = argparse.ArgumentParser()
    parser.add_argument("--failures", type=int, default=10_000)
    parser.add_argument("--dims", type=int, default=512)
    args = parser.parse_args()
    feats, true, pred, ids, props, modes = data(args.failures, args.dims)
    classes = tuple(str(d) for d in range(10))
    settings = ClusterSettings()

    result, seconds, peak = measure(
        lambda: cluster_failures(
            feats, true, pred, ids, classes, properties=props, settings=settings
        )
    )
    label_of = {i: c for c, f in enumerate(result.clusters) for i in f.members}
    ari = adjusted_rand_score(modes, [label_of.get(int(i), -1) for i in ids])
    print(
        f"detective.analysis.clusters: {args.failures} failures x {args.dims}-d, k={result.k} "
        f"(tried {settings.k_min}..{settings.k_max}): {seconds:.2f} s, peak "
        f"{peak:.0f} MiB (Python allocations), ARI vs 5 planted modes {ari:.3f}"
    )

    def baseline():
        x = StandardScaler().fit_transform(feats)
        best = None
        for k in range(settings.k_min, settings.k_max + 1):
            labels = MiniBatchKMeans(k, random_state=0, n_init=3, batch_size=2048).fit_predict(x)
            sample = np.random.default_rng(0).choice(len(x), min(len(x), 5000), replace=False)
            score = silhouette_score(x[sample], labels[sample])
            best = max(best or (score, k), (score, k))
        return best

    (score, k), b_seconds, b_peak = measure(baseline)
    print(
        f"baseline (MiniBatchKMeans on raw {args.dims}-d, silhouette on 5000): k={k}: "
        f"{b_seconds:.2f} s, peak {b_peak:.0f} MiB"
    )
    print(
        f"ratio: {b_seconds / seconds:.1f}x faster, {b_peak / max(peak, 1e-9):.1f}x less peak "
        "memory than the baseline"
    )


if __name__ == "__main__":
    main()
