"""Train/val leakage: exact and near-duplicate images shared between the splits."""

from __future__ import annotations

from dataclasses import dataclass

from detective.core.findings import (
    Finding,
    Metric,
    Strength,
    Table,
    Verdict,
    refutes,
    supports,
)
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register


@dataclass(frozen=True)
class LeakageThresholds:
    near: float = 0.997  # cosine of centred 16×16 thumbnails; digits' closest distinct pair: 0.994
    strong_fraction: float = 0.01  # share of val duplicated in train an expert acts on
    strong_count: int = 3


@dataclass(frozen=True)
class LeakageSettings:
    """How much leakage measures (read by measure only)."""

    train_items: int = 10_000  # train images compared against (at least --sample)
    examples: int = 10
    # Val images whose nearest train image is at least this similar are kept in the
    # measurement, so judge can re-apply any `near` threshold at or above it.
    candidate_similarity: float = 0.98


@dataclass(frozen=True)
class DuplicatePair:
    val_index: int
    train_index: int
    similarity: float
    exact: bool
    val_label: int
    train_label: int


@dataclass(frozen=True)
class LeakageMeasurement:
    source: str  # "raw" (raw_datasets) or "transformed" (datasets, augmentation included)
    val_checked: int
    val_size: int
    train_checked: int
    train_size: int
    candidates: tuple[DuplicatePair, ...]  # every val image with a twin candidate, unfiltered
    examples: int  # pairs the report lists
    similarity_quantiles: tuple[float, float, float]  # median, 99th percentile, max
    classes: tuple[str, ...]
    problems: tuple[str, ...]


@register
class TrainValLeakage(Check[LeakageMeasurement]):
    id = "train_val_leakage"
    title = "Train/val leakage and duplicates"
    stage = Stage.PIPELINE
    description = (
        "Finds val images that also appear in train: exact copies (pixel hash) and near duplicates "
        "(cosine similarity of centred thumbnails, blocked nearest-neighbour search), with their "
        "labels."
    )
    needs = ("model", "datasets")
    hypotheses = ("train_val_leakage",)
    measurement_type = LeakageMeasurement
    thresholds_type = LeakageThresholds
    settings_type = LeakageSettings

    def measure(self, ctx, progress) -> LeakageMeasurement:
        import numpy as np

        from detective.analysis.neardup import nearest

        use_raw = ctx.case.has("raw_datasets")
        problems: list[str] = []
        n_train = len(ctx.dataset("train"))
        train_idx = ctx.sample_indices("train", max(ctx.options.sample, self.settings.train_items))
        val_idx = ctx.sample_indices("val")
        parts = {}
        for k, (split, idx) in enumerate((("train", train_idx), ("val", val_idx))):
            span = progress.span(0.45 * k, 0.45 * (k + 1))
            parts[split] = _load(ctx, split, idx, use_raw, span, problems)
        progress.update(0.9, None, "nearest-neighbour search")
        t_ids, t_lab, t_desc, t_hash = parts["train"]
        v_ids, v_lab, v_desc, v_hash = parts["val"]
        found = nearest(v_desc, t_desc)
        by_hash = {h: i for i, h in enumerate(t_hash)}
        pairs = []
        for row in range(len(v_ids)):
            hit = by_hash.get(v_hash[row])
            is_exact = hit is not None
            j = hit if is_exact else int(found.index[row])
            sim = 1.0 if is_exact else float(found.similarity[row])
            if not is_exact and sim < self.settings.candidate_similarity:
                continue
            pairs.append(
                DuplicatePair(
                    int(v_ids[row]),
                    int(t_ids[j]),
                    sim,
                    is_exact,
                    int(v_lab[row]),
                    int(t_lab[j]),
                )
            )
        # The table shows 5 decimals: ties at that precision list conflicting labels first.
        pairs.sort(
            key=lambda p: (-round(p.similarity, 5), p.val_label == p.train_label, p.val_index)
        )
        sims = found.similarity if len(found.similarity) else np.zeros(1)
        progress.update(1.0)
        return LeakageMeasurement(
            source="raw" if use_raw else "transformed",
            val_checked=len(v_ids),
            val_size=len(ctx.dataset("val")),
            train_checked=len(t_ids),
            train_size=n_train,
            candidates=tuple(pairs),
            examples=self.settings.examples,
            similarity_quantiles=tuple(
                round(float(q), 5) for q in np.quantile(sims, [0.5, 0.99, 1.0])
            ),
            classes=ctx.case.classes,
            problems=tuple(problems[:20]),
        )

    def duplicates(self, m: LeakageMeasurement) -> tuple[DuplicatePair, ...]:
        """Exact copies and near duplicates at this check's `near` threshold, most similar
        first."""
        return tuple(p for p in m.candidates if p.exact or p.similarity >= self.thresholds.near)

    def judge(self, m: LeakageMeasurement) -> Finding:
        th = self.thresholds
        found = self.duplicates(m)
        exact = sum(p.exact for p in found)
        near = len(found) - exact
        conflicting = sum(p.val_label != p.train_label for p in found)
        dup = len(found)
        frac = dup / m.val_checked if m.val_checked else 0.0
        partial = m.train_checked < m.train_size
        metrics = (
            Metric("val images checked", m.val_checked),
            Metric("train images compared", m.train_checked),
            Metric("exact duplicates", exact),
            Metric("near duplicates", near),
            Metric("val duplicated in train", frac, "fraction"),
            Metric("duplicates with conflicting labels", conflicting),
            Metric("max similarity", m.similarity_quantiles[2], "cosine"),
        )

        def name(label: int) -> str:
            return m.classes[label] if 0 <= label < len(m.classes) else str(label)

        table = Table(
            "val images found in train",
            ("val index", "train index", "similarity", "kind", "val label", "train label"),
            tuple(
                (
                    p.val_index,
                    p.train_index,
                    round(p.similarity, 5),
                    "exact" if p.exact else "near",
                    name(p.val_label),
                    name(p.train_label),
                )
                for p in found[: m.examples]
            ),
        )
        notes = list(m.problems)
        if partial:
            notes.append(
                f"Compared against {m.train_checked} of {m.train_size} train images; the overlap "
                "is a lower bound (raise --sample to compare more)."
            )
        if m.source == "transformed":
            notes.append(
                "No raw_datasets(): compared transformed images, so random augmentation hides "
                "some exact copies (near duplicates are still found)."
            )
        if m.val_checked == 0:
            return Finding(
                self.id,
                Verdict.ERROR,
                "No val image could be read.",
                notes=tuple(notes),
                error="\n".join(m.problems),
            )
        if dup == 0:
            return Finding(
                self.id,
                Verdict.PASS,
                f"No val image out of {m.val_checked} appears in train (closest pair: cosine "
                f"{m.similarity_quantiles[2]:.4f}, threshold {th.near}).",
                metrics=metrics,
                notes=tuple(notes),
                effects=(
                    refutes(
                        "train_val_leakage",
                        Strength.WEAK if partial else Strength.MODERATE,
                        f"no exact or near duplicate among {m.val_checked} val images",
                    ),
                ),
            )
        strong = frac >= th.strong_fraction and dup >= th.strong_count
        what = (
            f"{dup} of {m.val_checked} val images ({frac:.1%}) also appear in train "
            f"({exact} exact, {near} near duplicates)"
        )
        if conflicting:
            what += f"; {conflicting} of them carry a different label than their twin"
        effects = (
            supports("train_val_leakage", Strength.STRONG if strong else Strength.MODERATE, what),
        )
        return self.finding(
            what + ".",
            metrics=metrics,
            tables=(table,),
            notes=tuple(notes),
            effects=effects,
            next_step="Deduplicate across splits (drop or move the val twins listed), fix the "
            "conflicting labels, then re-measure val; the current val score overstates "
            "generalisation.",
        )


def _load(ctx, split, indices, use_raw, progress, problems):  # noqa: ANN001, ANN202
    """(indices, labels, descriptors, hashes) of a split's sample, streamed in batches."""
    import numpy as np
    import torch

    from detective.analysis.neardup import THUMB, descriptors, pixel_hash
    from detective.analysis.rawimages import resized, to_unit_tensor

    ids: list[int] = []
    labels: list[int] = []
    desc: list[np.ndarray] = []
    hashes: list[str] = []
    if use_raw:
        raw = ctx.raw_dataset(split)
        for start in range(0, len(indices), 256):
            progress.update(start, len(indices), f"reading {split} images")
            thumbs, full = [], []
            for i in indices[start : start + 256]:
                try:
                    item = raw[i]
                    x = to_unit_tensor(item[0])
                    label = int(item[1])
                except Exception as e:  # user data: one bad file must not stop the search
                    problems.append(f"{split} item {i}: {type(e).__name__}: {e}")
                    continue
                full.append(x)
                thumbs.append(resized(x.mean(0, keepdim=True), THUMB))
                ids.append(i)
                labels.append(label)
            if thumbs:
                desc.append(descriptors(torch.stack(thumbs)))
                hashes.extend(h for x in full for h in pixel_hash(x.unsqueeze(0)))
    else:
        for batch in ctx.batches(split, indices, progress=progress, to_device=False):
            desc.append(descriptors(batch.x))
            hashes.extend(pixel_hash(batch.x))
            ids.extend(batch.indices.tolist())
            labels.extend(batch.y.tolist())
        bad = sorted(ctx.item_problems.get(split, {}).items())
        problems.extend(f"{split} item {i}: {why}" for i, why in bad)
    progress.update(1.0)
    matrix = np.concatenate(desc) if desc else np.zeros((0, THUMB * THUMB), np.float32)
    return np.asarray(ids), np.asarray(labels), matrix, hashes
