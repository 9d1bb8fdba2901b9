"""Failure clusters: group a model's failures into patterns and describe each by the numbers.

Each failure is embedded as its penultimate features (standardized, PCA-reduced), optionally
concatenated with its standardized image properties and a one-hot of its true→pred pair; each
block is scaled to unit total variance (times a settable weight) so no block dominates by
dimension count. k is chosen by silhouette over a settable range with scikit-learn's KMeans
(MiniBatchKMeans for large inputs); clusters under a minimum size are dropped. Every cluster is
then described only by measurements: dominant true→pred pairs, properties that differ from the
successes (Cohen's d), its share of all errors, the error rate of the slice it points at, and its
most central members for thumbnails. Deterministic for a seed.

Pure numpy/scikit-learn: no torch, so the benchmark and the tests can feed arrays directly.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from detective.analysis.collect import Collection


@dataclass(frozen=True)
class ClusterSettings:
    k_min: int = 2
    k_max: int = 8
    min_size: int = 5  # smaller clusters are dropped (their failures stay "unclustered")
    use_properties: bool = True
    use_pairs: bool = True
    feature_weight: float = 1.0
    property_weight: float = 1.0
    pair_weight: float = 1.0
    pca_dims: int = 32  # features are reduced to this many components first (speed, noise)
    silhouette_sample: int = 2000  # silhouette is estimated on at most this many failures
    minibatch_above: int = 5000  # MiniBatchKMeans beyond this many failures
    n_init: int = 3
    examples: int = 16  # most central members kept per cluster (thumbnails)
    seed: int = 0


@dataclass(frozen=True)
class PairCount:
    true: str
    pred: str
    count: int
    share: float  # of the cluster's failures


@dataclass(frozen=True)
class PropertyEffect:
    name: str
    cluster_mean: float
    reference_mean: float
    effect_size: float  # Cohen's d: (cluster - reference) / pooled sd
    reference: str  # "successes" or "other failures"


@dataclass(frozen=True)
class SliceRate:
    """The slice of all evaluated examples a cluster points at, and its error rate."""

    description: str  # e.g. "true class 3", "brightness < 0.21"
    size: int
    error_rate: float
    lift: float  # error_rate / overall error rate


@dataclass(frozen=True)
class ClusterFacts:
    id: str  # stable for the same members: reviews refer to it
    rank: int  # 1 = largest
    size: int
    share_of_errors: float
    cohesion: float  # mean silhouette of its (sampled) members, -1..1
    pairs: tuple[PairCount, ...]  # dominant true→pred pairs, most frequent first (≤ 3)
    properties: tuple[PropertyEffect, ...]  # largest |effect size| first
    slices: tuple[SliceRate, ...] = ()
    examples: tuple[int, ...] = ()  # dataset indices of the most central members
    members: tuple[int, ...] = ()  # dataset indices of every member

    @property
    def top_pair(self) -> PairCount | None:
        return self.pairs[0] if self.pairs else None

    def effect(self, name: str) -> PropertyEffect | None:
        return next((p for p in self.properties if p.name == name), None)


@dataclass(frozen=True)
class Clustering:
    failures: int
    clustered: int
    k: int  # chosen k (before dropping small clusters); 0 when not clustered
    silhouette: float  # of the chosen k; NaN when not clustered
    silhouettes: tuple[tuple[int, float], ...]  # (k, score) for every k tried
    clusters: tuple[ClusterFacts, ...]
    embedding: tuple[str, ...]  # the blocks used: "features", "properties", "pairs"
    reason: str = ""  # why nothing was clustered, when so
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Population:
    """Every evaluated example (failures and successes), for slice error rates."""

    label: np.ndarray  # [N]
    correct: np.ndarray  # [N] bool
    properties: Mapping[str, np.ndarray]  # name -> [N]


def cluster_id(members: Sequence[int]) -> str:
    digest = hashlib.sha1(",".join(map(str, sorted(members))).encode()).hexdigest()
    return "c-" + digest[:8]


def cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    """Standardized mean difference with the pooled standard deviation (NaN-safe)."""
    import numpy as np

    a = a[np.isfinite(a)]
    b = b[np.isfinite(b)]
    if len(a) < 2 or len(b) < 2:
        return math.nan
    pooled = ((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2)
    if pooled <= 1e-12:
        return (
            0.0
            if abs(a.mean() - b.mean()) <= 1e-12
            else math.copysign(math.inf, a.mean() - b.mean())
        )
    return float((a.mean() - b.mean()) / math.sqrt(pooled))


def _block(x: np.ndarray, weight: float) -> np.ndarray:
    """Scale a block to unit total variance, times `weight`."""
    import numpy as np

    total = float(x.var(0).sum())
    return x * (weight / math.sqrt(total)) if total > 1e-12 else np.zeros_like(x)


def embed(
    features: np.ndarray,
    true: np.ndarray,
    pred: np.ndarray,
    properties: Mapping[str, np.ndarray] | None,
    settings: ClusterSettings,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The matrix k-means sees, and which blocks it holds."""
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    blocks: list[np.ndarray] = []
    used: list[str] = []
    n = len(true)
    if features.size and features.shape[0] == n:
        x = StandardScaler().fit_transform(features.astype(np.float64))
        dims = min(settings.pca_dims, n - 1, x.shape[1])
        if settings.pca_dims and dims >= 1 and dims < x.shape[1]:
            x = PCA(n_components=dims, random_state=settings.seed).fit_transform(x)
        blocks.append(_block(x, settings.feature_weight))
        used.append("features")
    if settings.use_properties and properties:
        cols = []
        for name in sorted(properties):
            v = np.asarray(properties[name], np.float64)
            finite = np.isfinite(v)
            if finite.sum() < 2 or np.nanstd(v[finite]) < 1e-12:
                continue
            cols.append(np.where(finite, v, np.median(v[finite])))
        if cols:
            blocks.append(
                _block(StandardScaler().fit_transform(np.stack(cols, 1)), settings.property_weight)
            )
            used.append("properties")
    if settings.use_pairs:
        pairs = np.stack([true, pred], 1).astype(str)
        onehot = OneHotEncoder(sparse_output=False).fit_transform(
            np.char.add(np.char.add(pairs[:, :1], ">"), pairs[:, 1:])
        )
        blocks.append(_block(onehot, settings.pair_weight))
        used.append("pairs")
    if not blocks:
        return np.zeros((n, 0)), ()
    return np.concatenate(blocks, 1).astype(np.float32), tuple(used)


def _kmeans(x: np.ndarray, k: int, settings: ClusterSettings) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if len(x) > settings.minibatch_above:
        km = MiniBatchKMeans(
            n_clusters=k, random_state=settings.seed, n_init=settings.n_init, batch_size=2048
        )
    else:
        km = KMeans(n_clusters=k, random_state=settings.seed, n_init=settings.n_init)
    labels = km.fit_predict(x)
    return labels, km.cluster_centers_


def choose_k(
    x: np.ndarray, settings: ClusterSettings
) -> tuple[int, np.ndarray, np.ndarray, tuple[tuple[int, float], ...], np.ndarray]:
    """Best k by silhouette: (k, labels, centers, scores per k, silhouette sample rows)."""
    import numpy as np
    from sklearn.metrics import silhouette_score

    n = len(x)
    rng = np.random.default_rng(settings.seed)
    sample = (
        np.sort(rng.choice(n, settings.silhouette_sample, replace=False))
        if n > settings.silhouette_sample
        else np.arange(n)
    )
    best: tuple[float, int, np.ndarray, np.ndarray] | None = None
    scores = []
    # More clusters than n / min_size would mostly be dropped as too small.
    k_max = min(settings.k_max, n - 1, max(2, n // max(1, settings.min_size)))
    for k in range(max(2, settings.k_min), k_max + 1):
        labels, centers = _kmeans(x, k, settings)
        if len(np.unique(labels[sample])) < 2:
            continue
        score = float(silhouette_score(x[sample], labels[sample]))
        scores.append((k, round(score, 4)))
        if best is None or score > best[0] + 1e-9:
            best = (score, k, labels, centers)
    if best is None:
        return 0, np.zeros(n, int), np.zeros((0, x.shape[1])), tuple(scores), sample
    return best[1], best[2], best[3], tuple(scores), sample


def _slices(
    facts_pairs: tuple[PairCount, ...],
    effects: tuple[PropertyEffect, ...],
    member_props: Mapping[str, np.ndarray],
    reference_props: Mapping[str, np.ndarray],
    population: Population,
    classes: Sequence[str],
) -> tuple[SliceRate, ...]:
    """Error rates of the slices a cluster points at: its dominant true class, and the side of
    its most distinctive property beyond the midpoint between cluster and reference means."""
    import numpy as np

    out = []
    overall = 1.0 - float(np.mean(population.correct)) if len(population.correct) else math.nan
    if not overall or not math.isfinite(overall):
        return ()
    if facts_pairs:
        cls = list(classes).index(facts_pairs[0].true)
        mask = population.label == cls
        if mask.sum():
            rate = 1.0 - float(population.correct[mask].mean())
            out.append(
                SliceRate(f"true class {classes[cls]}", int(mask.sum()), rate, rate / overall)
            )
    for eff in effects[:1]:
        values = population.properties.get(eff.name)
        if values is None or not math.isfinite(eff.effect_size):
            continue
        cut = (
            float(np.nanmean(member_props[eff.name])) + float(np.nanmean(reference_props[eff.name]))
        ) / 2
        mask = values < cut if eff.effect_size < 0 else values > cut
        mask &= np.isfinite(values)
        if mask.sum():
            rate = 1.0 - float(population.correct[mask].mean())
            sign = "<" if eff.effect_size < 0 else ">"
            out.append(
                SliceRate(f"{eff.name} {sign} {cut:.3g}", int(mask.sum()), rate, rate / overall)
            )
    return tuple(out)


def cluster_failures(
    features: np.ndarray,
    true: np.ndarray,
    pred: np.ndarray,
    ids: np.ndarray,
    classes: Sequence[str],
    *,
    properties: Mapping[str, np.ndarray] | None = None,
    reference: Mapping[str, np.ndarray] | None = None,
    population: Population | None = None,
    settings: ClusterSettings | None = None,
) -> Clustering:
    """Cluster failures. `features` [F, D], `true`/`pred`/`ids` [F] (class indices, dataset
    indices), `properties` name -> [F] for the failures, `reference` name -> [R] for successes
    (effect sizes are measured against them; against the other failures when absent),
    `population` every evaluated example for slice error rates."""
    import numpy as np

    settings = settings or ClusterSettings()
    true = np.asarray(true)
    pred = np.asarray(pred)
    ids = np.asarray(ids)
    n = len(true)
    need = max(2, settings.k_min) * settings.min_size
    if n < need:
        return Clustering(
            n,
            0,
            0,
            math.nan,
            (),
            (),
            (),
            reason=f"{n} failures: too few to cluster (need {need})",
        )
    x, used = embed(features, true, pred, properties, settings)
    if x.shape[1] == 0:
        return Clustering(n, 0, 0, math.nan, (), (), used, reason="nothing to embed")
    k, labels, centers, scores, sample = choose_k(x, settings)
    if k == 0:
        return Clustering(
            n, 0, 0, math.nan, scores, (), used, reason="the failures do not separate"
        )
    from sklearn.metrics import silhouette_samples

    sil = np.full(n, np.nan)
    sil[sample] = silhouette_samples(x[sample], labels[sample])
    props = {k_: np.asarray(v, np.float64) for k_, v in (properties or {}).items()}
    ref = {k_: np.asarray(v, np.float64) for k_, v in (reference or {}).items()}
    drafts = []
    for c in range(k):
        rows = np.flatnonzero(labels == c)
        if len(rows) < settings.min_size:
            continue
        pair_counts = Counter(zip(true[rows].tolist(), pred[rows].tolist(), strict=True))
        pairs = tuple(
            PairCount(str(classes[t]), str(classes[p]), cnt, cnt / len(rows))
            for (t, p), cnt in sorted(pair_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        )
        effects = []
        member_props: dict[str, np.ndarray] = {}
        reference_props: dict[str, np.ndarray] = {}
        for name, values in props.items():
            member = values[rows]
            if name in ref and len(ref[name]) >= 2:
                other, against = ref[name], "successes"
            else:
                other, against = np.delete(values, rows), "other failures"
            d = cohens_d(member, other)
            if not math.isfinite(d) and not math.isinf(d):
                continue
            member_props[name], reference_props[name] = member, other
            effects.append(
                PropertyEffect(
                    name, float(np.nanmean(member)), float(np.nanmean(other)), d, against
                )
            )
        effects.sort(key=lambda e: (-abs(e.effect_size), e.name))
        effects_t = tuple(effects)
        slices = (
            _slices(pairs, effects_t, member_props, reference_props, population, classes)
            if population is not None
            else ()
        )
        dist = ((x[rows] - centers[c]) ** 2).sum(1)
        central = rows[np.argsort(dist, kind="stable")[: settings.examples]]
        coh = sil[rows]
        coh = coh[np.isfinite(coh)]
        drafts.append(
            ClusterFacts(
                id=cluster_id(ids[rows].tolist()),
                rank=0,
                size=int(len(rows)),
                share_of_errors=len(rows) / n,
                cohesion=float(coh.mean()) if len(coh) else math.nan,
                pairs=pairs,
                properties=effects_t,
                slices=slices,
                examples=tuple(int(i) for i in ids[central]),
                members=tuple(sorted(int(i) for i in ids[rows])),
            )
        )
    drafts.sort(key=lambda f: (-f.size, f.id))
    from dataclasses import replace

    clusters = tuple(replace(f, rank=i + 1) for i, f in enumerate(drafts))
    best = dict(scores).get(k, math.nan)
    return Clustering(
        failures=n,
        clustered=sum(f.size for f in clusters),
        k=k,
        silhouette=best,
        silhouettes=scores,
        clusters=clusters,
        embedding=used,
    )


def cluster_collection(col: Collection, settings: ClusterSettings) -> Clustering:
    """The failures of a collection, clustered from everything it measured: penultimate
    features when recorded, image properties (against the successes), confusion pairs. Every
    check that groups failures by cluster calls this, so one collection gives the same clusters
    (the same ids) in each of their tables."""
    import numpy as np

    classes = tuple(str(c) for c in col.classes)
    failed = ~col.correct
    frows = np.flatnonzero(failed)
    if col.features.size:
        keep = failed[col.feature_rows]
        frows = col.feature_rows[keep]
        feats = col.features[keep]
    else:
        feats = np.zeros((len(frows), 0), np.float32)
    names = [p for p in col.properties if np.isfinite(col.properties[p]).any()]
    return cluster_failures(
        feats,
        col.label[frows],
        col.pred[frows],
        col.index[frows],
        classes,
        properties={p: col.properties[p][frows] for p in names},
        reference={p: col.properties[p][col.correct] for p in names},
        population=Population(col.label, col.correct, {p: col.properties[p] for p in names}),
        settings=settings,
    )
