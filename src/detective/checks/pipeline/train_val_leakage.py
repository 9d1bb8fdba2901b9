"""Train/val leakage: exact and near-duplicate images shared between the splits.

Near duplicates are found twice: by the cosine of centred thumbnails (re-encoded, resized,
re-coloured copies), and by aligning each val image with its closest train candidates over its
mirror image, small shifts and re-crops resized back, compared on the overlap (shifted,
border-cropped, mirrored or re-cropped copies). Below the strict cosine a dense data set like
digits needs, a val image is a twin when it is far closer to its twin than the twin's own
closest train neighbour is: where pictures are sparse, a resampled copy is still a copy.
Blank (constant) images are not leakage: a loader that decodes files as blank makes "duplicates
with conflicting labels" of them, so they are evidence of corrupt inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from detective.core.budget import READ_OPS, Cost, Knob
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
from detective.core.ports import CacheKey
from detective.core.registry import Check, register

if TYPE_CHECKING:
    from detective.core.budget import CaseSize
    from detective.core.context import RunContext
    from detective.core.progress import Progress

TRAIN_ITEMS = 10_000  # train images compared against by default (at least --sample)


@dataclass(frozen=True)
class LeakageThresholds:
    near: float = 0.997  # cosine of centred 16×16 thumbnails; digits' closest distinct pair: 0.994
    # Below `near`, a val image is a twin when its residual (1 − cosine) to the twin is at most
    # this share of the twin's residual to its own closest other train image: 10× closer than
    # the data's pictures come anyway. (Distinct digits reach 0.21 of 450 val images against a
    # full train set and 0.14 against a sparse 40-image one; resized, re-cropped, mirrored
    # copies sit near 0.07.)
    distinct_margin: float = 0.1
    near_floor: float = 0.9  # never below this cosine
    strong_fraction: float = 0.01  # share of val duplicated in train an expert acts on
    strong_count: int = 3
    blank_share: float = 0.01  # share of val decoded as a blank (constant) image: corrupt inputs


@dataclass(frozen=True)
class LeakageSettings:
    """How much leakage measures (read by measure only)."""

    # Train images compared against; 0: max(--sample, TRAIN_ITEMS). --budget lowers it (the
    # overlap found is then a lower bound, and the finding says so).
    train_items: int = 0
    val_items: int = 0  # val images searched for a twin; 0: --sample
    examples: int = 10
    # Val images whose nearest train image is at least this similar are kept in the
    # measurement, so judge can re-apply any `near` threshold at or above it.
    candidate_similarity: float = 0.9
    candidates_per_orientation: int = 3  # train candidates per val variant, then aligned


@dataclass(frozen=True)
class DuplicatePair:
    val_index: int
    train_index: int
    similarity: float
    exact: bool
    val_label: int
    train_label: int
    transform: str = ""  # how the val image was aligned with its twin: "mirrored, shifted 1,-2"
    # The twin's similarity to its own closest other train image (exact copies aside): how
    # close this data's pictures come anyway where the twin lives. 1.0: not measured.
    twin_neighbour: float = 1.0


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
    # Blank (constant) images: in the val sample, those with a blank train twin (exact copy),
    # and how many of those twins carry another label. Not counted as leakage.
    blank_val: int = 0
    blank_val_in_train: int = 0
    blank_conflicting: int = 0
    blank_examples: tuple[int, ...] = ()  # val indices


def train_items(st: LeakageSettings, sample: int) -> int:
    return st.train_items or max(sample, TRAIN_ITEMS)


def val_items(st: LeakageSettings, sample: int) -> int:
    return st.val_items or sample


# The search's cost in HOST_OP units (detective.core.budget), calibrated on the ResNet-18 scale
# case (7,000 × 2,000 images at 64 px: 15-16 s where a run times a HOST_OP at 14 ms; a third
# each): 18 coarse candidate searches plus the fine one per val × train pair, the alignment of
# each val image with its candidates (25 shifts × 2 orientations at 32 px, the largest), and
# reading every image.
SEARCH_OPS_PER_PAIR = 30 / 1_000_000
ALIGN_OPS_PER_VAL = 0.2


def search_ops(train_n: int, val_n: int) -> float:
    return (SEARCH_OPS_PER_PAIR * train_n * val_n + ALIGN_OPS_PER_VAL * val_n
            + READ_OPS * (train_n + val_n))  # fmt: skip


def leakage_measurement(
    ctx: RunContext, settings: LeakageSettings, progress: Progress
) -> LeakageMeasurement:
    """The search under these settings, once per run: train_val_leakage and the judgement's
    `drop=near_twins` read the same measurement."""
    key = CacheKey("train_val_leakage", (settings, ctx.options.sample))
    return ctx.cache.get(key, lambda: _search(ctx, settings, progress))


def run_settings(ctx: RunContext) -> LeakageSettings:
    """The settings this run measures leakage with: the playbook's, shortened by --budget."""
    from detective.core.overrides import apply

    values: dict[str, object] = {}
    if ctx.plan is not None:
        values = dict(dict(ctx.plan.settings).get(TrainValLeakage.id, ()))
    return apply(LeakageSettings(), values, f"{TrainValLeakage.id}.settings")


@register
class TrainValLeakage(Check[LeakageMeasurement]):
    id = "train_val_leakage"
    title = "Train/val leakage and duplicates"
    stage = Stage.PIPELINE
    description = (
        "Finds val images that also appear in train: exact copies (pixel hash) and near duplicates "
        "(cosine similarity of centred thumbnails, blocked nearest-neighbour search; then each val "
        "image aligned with its closest train images over mirroring, small shifts and re-crops "
        "resized back; below the strict threshold a val image counts when it is 10× closer to "
        "its twin than the twin's own closest train neighbour), with their labels. Blank images "
        "shared by the splits are reported as corrupt inputs."
    )
    needs = ("model", "datasets")
    hypotheses = ("train_val_leakage", "corrupt_inputs")
    measurement_type = LeakageMeasurement
    thresholds_type = LeakageThresholds
    settings_type = LeakageSettings
    # The search grows with val × train: --budget shrinks both samples (train never below
    # 2,000 images, where a 1 % leak of a 10-class set still shows; see the tests).
    shrinkable = (
        Knob("val_items", 300,
             effective=lambda v, s: min(s.val_n, val_items(LeakageSettings(val_items=v),
                                                           s.sample))),
        Knob("train_items", 2000,
             effective=lambda v, s: min(s.train_n, train_items(LeakageSettings(train_items=v),
                                                               s.sample))),
    )  # fmt: skip

    def cost(self, size: CaseSize) -> Cost:
        train_n = min(size.train_n, train_items(self.settings, size.sample))
        val_n = min(size.val_n, val_items(self.settings, size.sample))
        return Cost(host_ops=search_ops(train_n, val_n))

    def measure(self, ctx, progress) -> LeakageMeasurement:
        return leakage_measurement(ctx, self.settings, progress)

    def is_twin(self, p: DuplicatePair) -> bool:
        """An exact copy; a near duplicate at `near`; or, down to `near_floor`, a val image
        much closer to its twin than the twin's own closest train neighbour is to it (where
        pictures are sparse a resized or re-cropped copy is still a copy; where they are
        dense, as with digits, a close neighbour is no evidence)."""
        th = self.thresholds
        if p.exact or p.similarity >= th.near:
            return True
        spacing = 1.0 - p.twin_neighbour
        return p.similarity >= th.near_floor and 1.0 - p.similarity <= th.distinct_margin * spacing

    def duplicates(self, m: LeakageMeasurement) -> tuple[DuplicatePair, ...]:
        """Exact copies and near duplicates (is_twin), most similar first."""
        return tuple(p for p in m.candidates if self.is_twin(p))

    def judge(self, m: LeakageMeasurement) -> Finding:
        return self._blanks(m, self._leakage(m))

    def _blanks(self, m: LeakageMeasurement, f: Finding) -> Finding:
        """Blank val images: corrupt inputs (a loader that decodes files as blank), never
        leakage, even when train holds the same blank image under other labels."""
        th = self.thresholds
        if not m.blank_val or not m.val_checked:
            return f
        share = m.blank_val / m.val_checked
        what = (
            f"{m.blank_val} of {m.val_checked} val images ({share:.1%}) are blank (one constant "
            "value)"
            + (
                f"; {m.blank_val_in_train} have the same blank image in train"
                + (f", {m.blank_conflicting} of them under another label" if m.blank_conflicting
                   else "")
                if m.blank_val_in_train
                else ""
            )
            + ": inputs decoded as blank, not leakage"
        )
        strong = share >= th.blank_share and m.blank_val >= th.strong_count
        return replace(
            f,
            verdict=Verdict.FAIL if strong else max_verdict(f.verdict, Verdict.WARN),
            summary=f"{what}. {f.summary}",
            metrics=f.metrics + (Metric("blank val images", m.blank_val),),
            effects=f.effects
            + (
                supports(
                    "corrupt_inputs", Strength.STRONG if strong else Strength.MODERATE, what
                ),
            ),
            notes=f.notes
            + ("blank val images (first): " + ", ".join(map(str, m.blank_examples)),),
        )

    def _leakage(self, m: LeakageMeasurement) -> Finding:
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
                    "exact" if p.exact else f"near ({p.transform})" if p.transform else "near",
                    name(p.val_label),
                    name(p.train_label),
                )
                for p in found[: m.examples]
            ),
        )
        notes = list(m.problems)
        if any(not p.exact and p.similarity < th.near for p in found):
            notes.append(
                f"Near duplicates below cosine {th.near} are listed when the val image is at "
                f"least {1 / th.distinct_margin:.0f}× closer to its twin than the twin's own "
                "closest other train image is (and above "
                f"{th.near_floor})."
            )
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


def _search(ctx: RunContext, settings: LeakageSettings, progress: Progress) -> LeakageMeasurement:
    import numpy as np

    from detective.analysis.neardup import nearest

    use_raw = ctx.case.has("raw_datasets")
    problems: list[str] = []
    n_train = len(ctx.dataset("train"))
    train_idx = ctx.sample_indices("train", train_items(settings, ctx.options.sample))
    val_idx = ctx.sample_indices("val", val_items(settings, ctx.options.sample))
    parts = {}
    for k, (split, idx) in enumerate((("train", train_idx), ("val", val_idx))):
        span = progress.span(0.45 * k, 0.45 * (k + 1))
        parts[split] = _read(ctx, split, idx, use_raw, span, problems)
    progress.update(0.9, None, "nearest-neighbour search")
    tr, va = parts["train"], parts["val"]
    t_ids, t_lab, t_desc, t_hash = tr.ids, tr.labels, tr.desc, tr.hashes
    v_ids, v_lab, v_desc, v_hash = va.ids, va.labels, va.desc, va.hashes
    found = nearest(v_desc, t_desc)
    by_hash = {h: i for i, h in enumerate(t_hash)}
    align = tr.grey.shape[1:] == va.grey.shape[1:] and len(tr.grey) > 0
    max_shift = max(1, round(min(tr.grey.shape[1:] or (16,)) / 16))
    k = settings.candidates_per_orientation
    if not align and len(tr.grey) and len(va.grey):
        problems.append("train and val images differ in size: no alignment search")
    pairs = []
    blank_in_train = blank_conflicting = 0
    blank_examples: list[int] = []
    cands = _candidates(va.grey, tr.coarse, k, max_shift) if align else None
    for row in range(len(v_ids)):
        hit = by_hash.get(v_hash[row])
        is_exact = hit is not None
        if va.blank[row]:  # a constant image matches every other one: not a twin
            blank_in_train += is_exact
            blank_conflicting += is_exact and int(v_lab[row]) != int(t_lab[hit])
            if len(blank_examples) < 20:
                blank_examples.append(int(v_ids[row]))
            continue
        j = hit if is_exact else int(found.index[row])
        sim = 1.0 if is_exact else float(found.similarity[row])
        how = ""
        if not is_exact and cands is not None:
            sim, j, how = _aligned_twin(va.grey[row], tr, cands[row], sim, j, max_shift)
        if not is_exact and sim < settings.candidate_similarity:
            continue
        pairs.append(
            DuplicatePair(
                int(v_ids[row]),
                int(t_ids[j]),
                sim,
                is_exact,
                int(v_lab[row]),
                int(t_lab[j]),
                how,
            )
        )
    if cands is not None:
        pairs = _with_twin_spacing(pairs, tr, t_ids, max_shift, k)
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
        examples=settings.examples,
        similarity_quantiles=tuple(
            round(float(q), 5) for q in np.quantile(sims, [0.5, 0.99, 1.0])
        ),
        classes=ctx.case.classes,
        problems=tuple(problems[:20]),
        blank_val=int(va.blank.sum()),
        blank_val_in_train=blank_in_train,
        blank_conflicting=blank_conflicting,
        blank_examples=tuple(blank_examples),
    )


def _candidates(grey, coarse, k: int, max_shift: int, extra: int = 0):  # noqa: ANN001, ANN202
    """[n, 18·(k+extra)] train rows to align each image with: the nearest in coarse thumbnails
    to it, its mirror image, and both shifted by ±max_shift (a small image's one-pixel shift is
    too large for a coarse thumbnail to absorb)."""
    import numpy as np

    from detective.analysis.neardup import nearest_k

    return np.concatenate(
        [
            nearest_k(_coarse(_translate(g, dy, dx)), coarse, k + extra)
            for g in (grey, grey[:, :, ::-1])
            for dy in (-max_shift, 0, max_shift)
            for dx in (-max_shift, 0, max_shift)
        ],
        1,
    )


RESCALE_CANDIDATES = 3  # the best-aligned candidates also tried as re-cropped, resized copies


def _aligned_twin(  # noqa: ANN202
    query, tr: _SplitImages, rows, sim: float, j: int, max_shift: int  # noqa: ANN001
):
    """(similarity, train row, how) of `query`'s closest train image once aligned: mirrored,
    shifted, or re-cropped by up to 2·max_shift pixels and resized back; (sim, j, "") when no
    alignment beats the unaligned thumbnail match."""
    import numpy as np

    from detective.analysis.neardup import alignment_scores, best_rescaled_alignment

    rows = np.unique(rows)
    rows = rows[~tr.blank[rows]]
    if not len(rows):
        return sim, j, ""
    scores, a = alignment_scores(query, tr.grey[rows], max_shift)
    a = replace(a, train_row=int(rows[a.train_row]))
    top = rows[np.argsort(-scores)[:RESCALE_CANDIDATES]]
    r = best_rescaled_alignment(query, tr.grey[top], 2 * max_shift)
    if r.similarity > a.similarity:
        a = replace(r, train_row=int(top[r.train_row]))
    if a.similarity <= sim + 1e-6 or not (a.mirrored or a.shift != (0, 0) or a.crop):
        return sim, j, ""
    how = (
        (["mirrored"] if a.mirrored else [])
        + ([f"re-cropped {abs(a.crop)} px and resized"] if a.crop else [])
        + ([f"shifted {a.shift[1]},{a.shift[0]}"] if any(a.shift) and not a.crop else [])
    )
    return a.similarity, a.train_row, ", ".join(how)


def _with_twin_spacing(
    pairs: list[DuplicatePair], tr: _SplitImages, t_ids, max_shift: int, k: int  # noqa: ANN001
) -> list[DuplicatePair]:
    """Each near pair with its twin's similarity to the twin's own closest other train image,
    by the same aligned search (exact copies of the twin aside: a duplicate within train)."""
    import numpy as np

    near = [p for p in pairs if not p.exact]
    if not near:
        return pairs
    row_of = {int(i): r for r, i in enumerate(t_ids)}
    twins = sorted({row_of[p.train_index] for p in near})
    cands = _candidates(tr.grey[twins], tr.coarse, k, max_shift, extra=1)
    spacing: dict[int, float] = {}
    for q, row in enumerate(twins):
        own = tr.hashes[row]
        others = np.array(
            [c for c in np.unique(cands[q]) if tr.hashes[c] != own and not tr.blank[c]], np.int64
        )
        if not len(others):
            continue
        thumb = tr.desc[others] @ tr.desc[row]
        at = int(thumb.argmax())
        spacing[row], _, _ = _aligned_twin(
            tr.grey[row], tr, others, float(thumb[at]), int(others[at]), max_shift
        )
    return [
        replace(p, twin_neighbour=spacing.get(row_of[p.train_index], 1.0)) if not p.exact else p
        for p in pairs
    ]


@dataclass(frozen=True)
class _SplitImages:
    ids: Any  # np.ndarray [n] dataset indices
    labels: Any  # [n]
    desc: Any  # [n, THUMB²] centred unit thumbnails
    hashes: list[str]
    grey: Any  # [n, R, R] grey images at the alignment resolution
    coarse: Any  # [n, 64] centred unit 8×8 thumbnails: candidates for alignment
    blank: Any  # [n] bool: a constant image (nothing to compare)


ALIGN_SIDE = 32  # alignment resolution (smaller images are aligned at their own size)


def _load(ctx, split, indices, use_raw, progress, problems):  # noqa: ANN001, ANN202
    """(indices, labels, descriptors, hashes) of a split's sample (the interventions read it)."""
    s = _read(ctx, split, indices, use_raw, progress, problems)
    return s.ids, s.labels, s.desc, s.hashes


def _read(ctx, split, indices, use_raw, progress, problems) -> _SplitImages:  # noqa: ANN001
    """A split's sample, streamed in batches: descriptors, hashes, grey images to align."""
    import numpy as np
    import torch

    from detective.analysis.neardup import THUMB, descriptors, pixel_hash
    from detective.analysis.rawimages import to_unit_tensor

    ids: list[int] = []
    labels: list[int] = []
    desc: list[np.ndarray] = []
    hashes: list[str] = []
    greys: list[torch.Tensor] = []
    blank: list[bool] = []

    def add(images: list[torch.Tensor]) -> None:
        desc.append(descriptors(torch.stack([_grey(x, THUMB) for x in images])))
        for x in images:
            hashes.extend(pixel_hash(x.unsqueeze(0)))
            greys.append(x.float().mean(0))
            blank.append(float(x.max() - x.min()) <= 1e-6)

    if use_raw:
        raw = ctx.raw_dataset(split)
        for start in range(0, len(indices), 256):
            progress.update(start, len(indices), f"reading {split} images")
            full = []
            for i in indices[start : start + 256]:
                try:
                    item = raw[i]
                    x = to_unit_tensor(item[0])
                    label = int(item[1])
                except Exception as e:  # user data: one bad file must not stop the search
                    problems.append(f"{split} item {i}: {type(e).__name__}: {e}")
                    continue
                full.append(x)
                ids.append(i)
                labels.append(label)
            if full:
                add(full)
    else:
        for batch in ctx.batches(split, indices, progress=progress, to_device=False):
            add(list(batch.x))
            ids.extend(batch.indices.tolist())
            labels.extend(batch.y.tolist())
        bad = sorted(ctx.item_problems.get(split, {}).items())
        problems.extend(f"{split} item {i}: {why}" for i, why in bad)
    progress.update(1.0)
    matrix = np.concatenate(desc) if desc else np.zeros((0, THUMB * THUMB), np.float32)
    side = min([ALIGN_SIDE, *(min(g.shape) for g in greys[:1])])
    grey = (
        torch.stack([_grey(g[None], side)[0] for g in greys]).numpy()
        if greys
        else np.zeros((0, side, side), np.float32)
    )
    return _SplitImages(
        np.asarray(ids),
        np.asarray(labels),
        matrix,
        hashes,
        grey,
        _coarse(grey),
        np.asarray(blank, bool),
    )


def _grey(x, side: int):  # noqa: ANN001, ANN202
    """[C, H, W] → grey [1, side, side] (antialiased when shrinking)."""
    from detective.analysis.rawimages import resized

    return resized(x.float().mean(0, keepdim=True), side)


def _translate(grey, dy: int, dx: int):  # noqa: ANN001, ANN202
    """[n, H, W] moved by (dy, dx) pixels, the uncovered border zero."""
    import numpy as np

    out = np.zeros_like(grey)
    h, w = grey.shape[1:]
    out[:, max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)] = grey[
        :, max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)
    ]
    return out


def _coarse(grey):  # noqa: ANN001, ANN202
    """[n, R, R] → [n, 64] centred unit 8×8 thumbnails (tolerant of small shifts)."""
    import numpy as np
    import torch

    if len(grey) == 0:
        return np.zeros((0, 64), np.float32)
    t = torch.as_tensor(np.ascontiguousarray(grey))[:, None].float()
    small = torch.nn.functional.interpolate(
        t, size=(8, 8), mode="bilinear", antialias=t.shape[-1] > 8, align_corners=False
    ).flatten(1)
    small = small - small.mean(1, keepdim=True)
    small = small / small.norm(dim=1, keepdim=True).clamp_min(1e-6)
    return small.numpy().astype(np.float32)


def max_verdict(a: Verdict, b: Verdict) -> Verdict:
    """The more serious of two verdicts (PASS < WARN < FAIL); others keep `a`."""
    order = (Verdict.PASS, Verdict.WARN, Verdict.FAIL)
    if a not in order or b not in order:
        return a
    return max(a, b, key=order.index)
